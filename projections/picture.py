"""The per-buurt picture: one row per issue, folded from the issue's events.

Pure: no I/O. `apply(row, event, version)` is the whole projection; the
runner (`projections.runner`) feeds it from the event log and stores the rows,
the as-of replay (`PictureQueries.replay`) feeds it a buurt's past. It folds
the contract's events and the lean ones a replay decodes
(`projections.picture_events`) alike.

A row keeps what the picture shows (status, owner, ages, counts, reporters)
and the content an entitled reader may see (summary, location, the signals'
own words). Personal data (reporters' names and phone numbers, household
references) is never copied into a row: it stays in the event log, where
`projections.timeline` shows it only to those who may see it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

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
from projections.picture_events import (
    Absorbed,
    Accepted,
    Attached,
    Claimed,
    Declined,
    Escalated,
    FoldedEvent,
    Merged,
    Offered,
    Opened,
    Released,
    Reopened,
    Resolved,
    SignalSummary,
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
# Names that recur in every row (buurten, categories, organisations): one object each,
# not a copy per row as each event decodes them. A replay holds ~100,000 rows.
_shared = sys.intern
# The picture's order: what needs someone first.
STATUS_RANK = {ESCALATED: 0, UNOWNED: 1, HANDOVER_PENDING: 2, OWNED: 3, RESOLVED: 4, MERGED: 5}


class IssueRow(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True, gc=False):
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


class FoldedRow(IssueRow, kw_only=True, rename="camel", omit_defaults=True, gc=False):
    """An issue's row as the projection runner folds it from the lean events: each
    signal encoded once, as the row stores it, when it arrives (then its objects are
    at hand; a row is encoded again at every write). Encodes to the same JSON as the
    `IssueRow` it stands for, and is one, but for its signals."""

    signals: list[msgspec.Raw] = msgspec.field(default_factory=list)  # type: ignore[assignment]


_encode = msgspec.json.Encoder().encode

PictureEvent = IssueEventType | FoldedEvent
"""What `apply` folds: a contract event, or the lean one a replay decodes (same meaning)."""


def summarised(signal: SignalRecord | SignalSummary) -> SignalSummary:
    if type(signal) is SignalSummary:  # a replay's, decoded as the row keeps it
        return signal
    return SignalSummary(
        signal_ref=signal.signal_ref,
        organisation=signal.organisation,
        summary=signal.summary,
        observed_at=signal.observed_at,
        location=signal.location,
    )


def apply(row: IssueRow | None, event: PictureEvent, version: int) -> IssueRow | None:
    """The row after `event`, the issue's `version`th; events already applied change nothing.

    Returns None only for an event of an issue the picture has never seen opened
    (a log that starts mid-way); the runner skips those. A signal the event
    brings is appended to `row.signals`.
    """
    if isinstance(event, _OPENED):
        if row is not None:
            return row
        return _opened(event, version)
    if row is None or version <= row.version:
        return row
    row.version = version
    row.updated_at = event.at
    _CHANGES[type(event)](row, event)
    return row


def _opened(event: IssueOpened | Opened, version: int) -> IssueRow:
    signal = event.signal
    row = (FoldedRow if type(event) is Opened else IssueRow)(
        id=event.issue_id,
        buurt=_shared(event.buurt),
        category=_shared(event.category),
        sensitivity=_shared(event.sensitivity),
        status=UNOWNED,
        opened_at=event.at,
        opened_by=_shared(event.organisation),
        updated_at=event.at,
        reporters=[_shared(event.organisation)],
        version=version,
        summary=signal.summary,
        location=signal.location,
    )
    _add_signal(row, signal)
    return row


def _attached(row: IssueRow, event: SignalAttached | Attached) -> None:
    row.signal_count += 1
    _add_reporter(row, event.organisation)
    _add_signal(row, event.signal)


def _add_signal(row: IssueRow, signal: SignalRecord | SignalSummary) -> None:
    if isinstance(row, FoldedRow):
        row.signals.append(msgspec.Raw(_encode(summarised(signal))))
    else:
        row.signals.append(summarised(signal))


def _claimed(row: IssueRow, event: OwnershipClaimed | Claimed) -> None:
    _owned_by(row, event.organisation, event.at)
    row.escalated_at = None
    row.due_at = None


def _offered(row: IssueRow, event: HandoverOffered | Offered) -> None:
    row.status = HANDOVER_PENDING
    row.handover_to = _shared(event.to)


def _accepted(row: IssueRow, event: HandoverAccepted | Accepted) -> None:
    _owned_by(row, event.organisation, event.at)


def _declined(row: IssueRow, _event: object) -> None:
    row.status = OWNED
    row.handover_to = None


def _released(row: IssueRow, _event: object) -> None:
    _unowned(row)


def _resolved(row: IssueRow, event: IssueResolved | Resolved) -> None:
    row.status = RESOLVED
    row.handover_to = None
    row.resolved_at = event.at
    row.resolution = event.resolution


def _reopened(row: IssueRow, _event: object) -> None:
    _unowned(row)
    row.resolved_at = None
    row.resolution = None


def _merged(row: IssueRow, event: IssueMerged | Merged) -> None:
    row.status = MERGED
    row.handover_to = None
    row.merged_into = event.into


def _absorbed(row: IssueRow, event: IssueAbsorbed | Absorbed) -> None:
    row.signal_count += event.signal_count
    for reporter in event.reporters:
        _add_reporter(row, reporter)


def _escalated(row: IssueRow, event: IssueEscalated | Escalated) -> None:
    row.escalated_at = event.at
    row.due_at = event.due_at
    if row.status == UNOWNED:
        row.status = ESCALATED


_OPENED = (IssueOpened, Opened)
# One change per event type, for the contract's class and the lean one alike.
_CHANGES: dict[type, Callable[[IssueRow, Any], None]] = {
    kind: change
    for kinds, change in (
        ((SignalAttached, Attached), _attached),
        ((OwnershipClaimed, Claimed), _claimed),
        ((HandoverOffered, Offered), _offered),
        ((HandoverAccepted, Accepted), _accepted),
        ((HandoverDeclined, Declined), _declined),
        ((OwnershipReleased, Released), _released),
        ((IssueResolved, Resolved), _resolved),
        ((IssueReopened, Reopened), _reopened),
        ((IssueMerged, Merged), _merged),
        ((IssueAbsorbed, Absorbed), _absorbed),
        ((IssueEscalated, Escalated), _escalated),
    )
    for kind in kinds
}


def _owned_by(row: IssueRow, organisation: str, at: datetime) -> None:
    row.status = OWNED
    row.owner = _shared(organisation)
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
        row.reporters.append(_shared(organisation))


def picture_order(row: IssueRow) -> tuple[int, datetime, str]:
    """Unowned and escalated first, then the oldest first (issues opened together: by id)."""
    return STATUS_RANK.get(row.status, 9), row.opened_at, row.id


class Picture:
    """Rows by issue id, folded in memory: the as-of replay and the tests' reference."""

    def __init__(self) -> None:
        self.rows: dict[str, IssueRow] = {}

    def apply(self, event: PictureEvent, version: int) -> None:
        row = apply(self.rows.get(event.issue_id), event, version)
        if row is not None:
            self.rows[row.id] = row
