"""The issue lifecycle, as partners read it on `events.<buurt>.issue.<id>`.

One tagged Struct per event (`"type": "OwnershipClaimed"`); the stored
message body is exactly this JSON, with the event type (`Es-Topic`) and the
issue's version (`Es-Version`) in headers.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from events.contract.base import BuurtCode, Contract, IssueId, Moment, OrganisationId, Text
from events.contract.intake import CategoryCode, Location, Reporter

Sensitivity = Literal["open", "vertrouwelijk"]


# The personal data of a signal, each sealed on its own (`SealedPersonalData.field`).
PersonalField = Literal["reporter", "subjectRef"]
REPORTER: PersonalField = "reporter"
SUBJECT_REF: PersonalField = "subjectRef"


class SealedPersonalData(Contract, frozen=True, kw_only=True):
    """One part of a signal's personal data (its `reporter` or its `subjectRef`) as the
    log holds it, sealed with its data subject's key: unreadable once the subject has
    been forgotten.

    `subject`: the data subject's name in the log (a keyed hash, not what
    identifies them); `sealed`: base64 of nonce, ciphertext and tag (ChaCha20-Poly1305).
    See `events.personal_data`.
    """

    field: PersonalField
    subject: Annotated[str, msgspec.Meta(max_length=64)]
    sealed: Annotated[str, msgspec.Meta(max_length=4096)]


class SignalRecord(Contract, frozen=True, kw_only=True):
    """A signal as the issue remembers it.

    Its personal data is stored `personal`, sealed. `reporter` and `subjectRef`
    in the clear are in events written before personal data was sealed, and in
    an issue's history as a reader entitled to it sees it, unsealed.
    """

    signal_ref: str
    organisation: OrganisationId
    summary: str
    observed_at: Moment
    location: Location | None = None
    reporter: Reporter | None = None
    subject_ref: str | None = None
    personal: list[SealedPersonalData] | None = None


class IssueEvent(Contract, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Who did what to which issue, when."""

    issue_id: IssueId
    buurt: BuurtCode
    category: CategoryCode
    at: Moment
    organisation: OrganisationId
    actor: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class IssueOpened(IssueEvent, frozen=True, kw_only=True):
    """A signal matched no open issue, so it opened this one (unowned)."""

    sensitivity: Sensitivity
    signal: SignalRecord


class SignalAttached(IssueEvent, frozen=True, kw_only=True):
    """Another signal about the same thing in the same place."""

    signal: SignalRecord


class OwnershipClaimed(IssueEvent, frozen=True, kw_only=True):
    """`organisation` took regie of an unowned issue."""


class HandoverOffered(IssueEvent, frozen=True, kw_only=True):
    """The owner offered the issue to another organisation."""

    to: OrganisationId


class HandoverAccepted(IssueEvent, frozen=True, kw_only=True):
    """`organisation` accepted the handover and is the owner now."""

    previous_owner: OrganisationId


class HandoverDeclined(IssueEvent, frozen=True, kw_only=True):
    """`organisation` declined; the owner keeps the issue."""


class OwnershipReleased(IssueEvent, frozen=True, kw_only=True):
    """The owner let go; the issue is unowned again."""


class IssueResolved(IssueEvent, frozen=True, kw_only=True):
    resolution: Text


class IssueReopened(IssueEvent, frozen=True, kw_only=True):
    """Any organisation reopened a resolved issue; it is unowned again."""

    reason: Text


class IssueMerged(IssueEvent, frozen=True, kw_only=True):
    """This issue closed into another one, which counts its signals."""

    into: IssueId


class IssueAbsorbed(IssueEvent, frozen=True, kw_only=True):
    """Another issue was merged into this one."""

    merged: IssueId
    signal_count: int
    reporters: list[OrganisationId]


class IssueEscalated(IssueEvent, frozen=True, kw_only=True):
    """Unowned past its category's target time to ownership."""

    due_at: Moment


IssueEventType = (
    IssueOpened
    | SignalAttached
    | OwnershipClaimed
    | HandoverOffered
    | HandoverAccepted
    | HandoverDeclined
    | OwnershipReleased
    | IssueResolved
    | IssueReopened
    | IssueMerged
    | IssueAbsorbed
    | IssueEscalated
)
ISSUE_EVENT_TYPES: tuple[type[IssueEvent], ...] = (
    IssueOpened,
    SignalAttached,
    OwnershipClaimed,
    HandoverOffered,
    HandoverAccepted,
    HandoverDeclined,
    OwnershipReleased,
    IssueResolved,
    IssueReopened,
    IssueMerged,
    IssueAbsorbed,
    IssueEscalated,
)
