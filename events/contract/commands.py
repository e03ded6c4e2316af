"""Acting on an issue: `cmd.<org>.<verb>` request/reply (and the same bodies over HTTP)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from events.contract.base import Contract, IssueId, OrganisationId, Text

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
RefusalCode = Literal[
    "already-owned", "not-owner", "not-found", "invalid", "conflict", "forbidden"
]


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
