"""The per-buurt picture: one row per issue, folded from the issue's events.

Pure: no I/O. `apply(row, event, version)` is the whole projection; the
runner (`projections.runner`) feeds it from the event log and stores the rows,
the as-of replay (`projections.as_of`) feeds it a buurt's past.

A row keeps what the picture shows (status, owner, ages, counts, reporters)
and the content an entitled reader may see (summary, location, the signals'
own words). Personal data (reporters' names and phone numbers, household
references) is never copied into a row: it stays in the event log, where
`projections.timeline` shows it only to those who may see it.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from events.contract import (
    HandoverAccepted,
    HandoverDeclined,
    HandoverOffered,
    IssueAbsorbed,
    IssueEscalated,
    IssueEventType,
    IssueMerged,
    IssueOpened,
    IssueReopened,
    IssueResolved,
    Location,
    OwnershipClaimed,
    OwnershipReleased,
    SignalAttached,
    SignalRecord,
)
from services.coordination.issue import Status

# The Issue aggregate's statuses, as the picture stores and answers them.
UNOWNED = Status.UNOWNED.value
OWNED = Status.OWNED.value
HANDOVER_PENDING = Status.HANDOVER_PENDING.value
ESCALATED = Status.ESCALATED.value
RESOLVED = Status.RESOLVED.value
MERGED = Status.MERGED.value
STATUSES = tuple(status.value for status in Status)
CLOSED = frozenset({RESOLVED, MERGED})
# The picture's order: what needs someone first.
STATUS_RANK = {ESCALATED: 0, UNOWNED: 1, HANDOVER_PENDING: 2, OWNED: 3, RESOLVED: 4, MERGED: 5}


class SignalSummary(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """A signal as the picture shows it: content, never personal data."""

    signal_ref: str
    organisation: str
    summary: str
    observed_at: datetime
    location: Location | None = None


class IssueRow(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """One issue in the picture, as stored in the view database."""

    id: str
    buurt: str
    category: str
    sensitivity: str
    status: str
    owner: str | None = None
    owned_since: datetime | None = None
    opened_at: datetime
    opened_by: str
    updated_at: datetime
    signal_count: int = 1
    reporters: list[str] = msgspec.field(default_factory=list)
    version: int = 0
    handover_to: str | None = None
    escalated_at: datetime | None = None
    due_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    merged_into: str | None = None
    summary: str = ""
    location: Location | None = None
    signals: list[SignalSummary] = msgspec.field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED


def summarised(signal: SignalRecord) -> SignalSummary:
    return SignalSummary(
        signal_ref=signal.signal_ref,
        organisation=signal.organisation,
        summary=signal.summary,
        observed_at=signal.observed_at,
        location=signal.location,
    )


def apply(row: IssueRow | None, event: IssueEventType, version: int) -> IssueRow | None:
    """The row after `event`, the issue's `version`th; events already applied change nothing.

    Returns None only for an event of an issue the picture has never seen opened
    (a log that starts mid-way); the runner skips those.
    """
    if isinstance(event, IssueOpened):
        if row is not None:
            return row
        signal = event.signal
        return IssueRow(
            id=event.issue_id,
            buurt=event.buurt,
            category=event.category,
            sensitivity=event.sensitivity,
            status=UNOWNED,
            opened_at=event.at,
            opened_by=event.organisation,
            updated_at=event.at,
            reporters=[event.organisation],
            version=version,
            summary=signal.summary,
            location=signal.location,
            signals=[summarised(signal)],
        )
    if row is None or version <= row.version:
        return row
    row.version = version
    row.updated_at = event.at
    _change(row, event)
    return row


def _change(row: IssueRow, event: IssueEventType) -> None:
    if isinstance(event, SignalAttached):
        row.signal_count += 1
        _add_reporter(row, event.organisation)
        row.signals.append(summarised(event.signal))
    elif isinstance(event, OwnershipClaimed):
        _owned_by(row, event.organisation, event.at)
        row.escalated_at = None
        row.due_at = None
    elif isinstance(event, HandoverOffered):
        row.status = HANDOVER_PENDING
        row.handover_to = event.to
    elif isinstance(event, HandoverAccepted):
        _owned_by(row, event.organisation, event.at)
    elif isinstance(event, HandoverDeclined):
        row.status = OWNED
        row.handover_to = None
    elif isinstance(event, OwnershipReleased):
        _unowned(row)
    elif isinstance(event, IssueResolved):
        row.status = RESOLVED
        row.handover_to = None
        row.resolved_at = event.at
        row.resolution = event.resolution
    elif isinstance(event, IssueReopened):
        _unowned(row)
        row.resolved_at = None
        row.resolution = None
    elif isinstance(event, IssueMerged):
        row.status = MERGED
        row.handover_to = None
        row.merged_into = event.into
    elif isinstance(event, IssueAbsorbed):
        row.signal_count += event.signal_count
        for reporter in event.reporters:
            _add_reporter(row, reporter)
    elif isinstance(event, IssueEscalated):
        row.escalated_at = event.at
        row.due_at = event.due_at
        if row.status == UNOWNED:
            row.status = ESCALATED


def _owned_by(row: IssueRow, organisation: str, at: datetime) -> None:
    row.status = OWNED
    row.owner = organisation
    row.owned_since = at
    row.handover_to = None


def _unowned(row: IssueRow) -> None:
    row.status = UNOWNED
    row.owner = None
    row.owned_since = None
    row.handover_to = None
    row.escalated_at = None
    row.due_at = None


def _add_reporter(row: IssueRow, organisation: str) -> None:
    if organisation not in row.reporters:
        row.reporters.append(organisation)


def picture_order(row: IssueRow) -> tuple[int, datetime, str]:
    """Unowned and escalated first, then the oldest first (issues opened together: by id)."""
    return STATUS_RANK.get(row.status, 9), row.opened_at, row.id


class Picture:
    """Rows by issue id, folded in memory: the as-of replay and the tests' reference."""

    def __init__(self) -> None:
        self.rows: dict[str, IssueRow] = {}

    def apply(self, event: IssueEventType, version: int) -> None:
        row = apply(self.rows.get(event.issue_id), event, version)
        if row is not None:
            self.rows[row.id] = row
