"""The issue events as the picture folds them: only the fields `projections.picture` reads.

A replay decodes a million of these: msgspec skips the fields a Struct does
not name (personal data, reasons, actors) without building them, and checks
nothing the event store did not check when the event was written. The tags
and field names are the contract's (`events.contract`), so one stored body
decodes as either; `projections.reading.picture_event` decodes these,
`projections.reading.issue_event` the full contract events.

Personal data (a signal's reporter and subject reference) has no field here,
so it cannot reach a row.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from events.contract import Location


class _Folded(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", tag_field="type", gc=False
):
    issue_id: str
    at: datetime


class SignalSummary(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True, gc=False
):
    """A signal as the picture shows it: content, never personal data."""

    # A replay decodes an event's signal straight into the one its row keeps.

    signal_ref: str
    organisation: str
    summary: str
    observed_at: datetime
    location: Location | None = None


class Opened(_Folded, frozen=True, kw_only=True, tag="IssueOpened"):
    buurt: str
    category: str
    organisation: str
    sensitivity: str
    signal: SignalSummary


class Attached(_Folded, frozen=True, kw_only=True, tag="SignalAttached"):
    organisation: str
    signal: SignalSummary


class Claimed(_Folded, frozen=True, kw_only=True, tag="OwnershipClaimed"):
    organisation: str


class Offered(_Folded, frozen=True, kw_only=True, tag="HandoverOffered"):
    to: str


class Accepted(_Folded, frozen=True, kw_only=True, tag="HandoverAccepted"):
    organisation: str


class Declined(_Folded, frozen=True, kw_only=True, tag="HandoverDeclined"):
    pass


class Released(_Folded, frozen=True, kw_only=True, tag="OwnershipReleased"):
    pass


class Resolved(_Folded, frozen=True, kw_only=True, tag="IssueResolved"):
    resolution: str


class Reopened(_Folded, frozen=True, kw_only=True, tag="IssueReopened"):
    pass


class Merged(_Folded, frozen=True, kw_only=True, tag="IssueMerged"):
    into: str


class Absorbed(_Folded, frozen=True, kw_only=True, tag="IssueAbsorbed"):
    signal_count: int
    reporters: list[str]


class Escalated(_Folded, frozen=True, kw_only=True, tag="IssueEscalated"):
    due_at: datetime


FoldedEvent = (
    Opened
    | Attached
    | Claimed
    | Offered
    | Accepted
    | Declined
    | Released
    | Resolved
    | Reopened
    | Merged
    | Absorbed
    | Escalated
)
folded_event_decoder = msgspec.json.Decoder(FoldedEvent)
