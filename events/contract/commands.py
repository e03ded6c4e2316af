"""Acting on an issue: `cmd.<org>.<verb>` request/reply (and the same bodies over HTTP)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from events.contract.base import Contract, IssueId, OrganisationId, Text
from events.contract.intake import Reporter

Verb = Literal[
    "claim",
    "release",
    "handover",
    "accept-handover",
    "decline-handover",
    "resolve",
    "reopen",
    "merge",
]
RefusalCode = Literal["already-owned", "not-owner", "not-found", "invalid", "conflict", "forbidden"]


class Command(Contract, frozen=True, kw_only=True):
    """Every command names its issue; `actor` is the person or system acting."""

    issue_id: IssueId
    actor: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class Claim(Command, frozen=True, kw_only=True):
    pass


class Release(Command, frozen=True, kw_only=True):
    pass


class Handover(Command, frozen=True, kw_only=True):
    to: OrganisationId


class AcceptHandover(Command, frozen=True, kw_only=True):
    pass


class DeclineHandover(Command, frozen=True, kw_only=True):
    pass


class Resolve(Command, frozen=True, kw_only=True):
    resolution: Text


class Reopen(Command, frozen=True, kw_only=True):
    reason: Text


class Merge(Command, frozen=True, kw_only=True):
    into: IssueId


COMMANDS: dict[str, type[Command]] = {
    "claim": Claim,
    "release": Release,
    "handover": Handover,
    "accept-handover": AcceptHandover,
    "decline-handover": DeclineHandover,
    "resolve": Resolve,
    "reopen": Reopen,
    "merge": Merge,
}


# Not a command on an issue: `cmd.<org>.forget-personal-data` (and its HTTP POST).
FORGET_PERSONAL_DATA = "forget-personal-data"
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ForgetPersonalData(Contract, frozen=True, kw_only=True):
    """Forget one of the organisation's data subjects: the household or person its
    signals named with `subjectRef`, or a reporter of its signals (`reporter`, by the
    name and phone its signals gave). Their personal data becomes unreadable
    everywhere in the log; the rest of every event stays."""

    subject_ref: Reference | None = None
    reporter: Reporter | None = None
    actor: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class PersonalDataForgotten(Contract, frozen=True, kw_only=True, omit_defaults=False):
    """`forgotten`: whether the subject had a key (false: nothing of theirs was stored,
    or it had been forgotten before)."""

    ok: Literal[True] = True
    forgotten: bool


class Accepted(Contract, frozen=True, kw_only=True, omit_defaults=False):
    ok: Literal[True] = True
    issue_id: IssueId
    version: int


class Refused(Contract, frozen=True, kw_only=True, omit_defaults=False):
    ok: Literal[False] = False
    code: RefusalCode
    message: str


# Replies are told apart by `ok`; decode with `decode_reply`.
Reply = Accepted | Refused
