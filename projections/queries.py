"""Reading the picture: the one place HTTP, NATS `query.<org>.…` and the dashboard ask.

Every answer is for one reader (an organisation from the organisations file)
and shows what need-to-know lets it see (`projections.visibility`). Refusals
are the domain's (`not-found`, `forbidden`, `invalid`) so that every edge maps
them the same way as command refusals. (HTTP asks for a buurt's live picture
through `projections.answers`, which puts the same bytes together from the
buurt's kept, encoded issues, and asks here for the rest.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
import msgspec

from projections.feeds import Feed
from projections.picture import STATUSES, IssueRow, Picture, picture_order
from projections.reading import issue_event
from projections.store import ALL, OPEN, ViewStore
from projections.timeline import Unseal, history_entry
from projections.visibility import IssueView, Visibility
from services.coordination.refusals import Forbidden, InvalidCommand, NotFound
from services.registries import Organisation
from services.registries.buurten import buurt_code_problem

T = TypeVar("T")
STATUS_FILTERS = (OPEN, "resolved", ALL, *(s for s in STATUSES if s != "resolved"))

# (topic, version, body) of each of an issue's stored events, in order.
StoredIssueEvents = Sequence[tuple[str, int, bytes]]


class Counts(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    by_status: dict[str, int]
    by_category: dict[str, int]


class BuurtPicture(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """`GET /api/v1/buurten/{buurt}/issues`: unowned and escalated first, then the oldest."""

    buurt: str
    as_of: datetime
    issues: list[IssueView]
    counts: Counts
    # Ids of the issues the reader owns, or is offered in a handover.
    mine: list[str]
    # The event log position the picture reflects (None for an as-of replay).
    position: int | None = None


class IssueHistory(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    issue_id: str
    events: list[dict[str, Any]]


class PictureQueries:
    """The picture's questions, answered from the view store (or by replay, for `asOf`)."""

    def __init__(
        self,
        store: ViewStore,
        visibility: Visibility,
        *,
        buurt_feed: Callable[[str], Feed],
        issue_events: Callable[[str], StoredIssueEvents],
        unseal: Unseal,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.visibility = visibility
        self.buurt_feed = buurt_feed
        self.issue_events = issue_events
        # A signal's personal data, for the readers entitled to it (may ask the keys' store).
        self.unseal = unseal
        self.clock = clock

    async def buurt_issues(
        self,
        reader: Organisation,
        buurt: str,
        *,
        status: str = OPEN,
        owner: str | None = None,
        category: str | None = None,
        as_of: datetime | None = None,
    ) -> BuurtPicture:
        self.check_buurt_question(reader, buurt, status)
        now = self.clock()
        if as_of is not None:
            if as_of.tzinfo is None:
                raise InvalidCommand("asOf needs a UTC offset, e.g. 2026-11-20T09:30:00Z")
            if as_of > now:
                raise InvalidCommand("asOf lies in the future")
            rows = _filtered(await self.replay(buurt, as_of), status, owner, None)
            position = None
            moment = as_of
        else:
            rows, position = await self._read(self._live_rows, buurt, status, owner)
            moment = now
        views = [
            self.visibility.view(reader, row, moment)
            for row in sorted(rows, key=picture_order)
            if self.visibility.may_see(reader, row)
        ]
        if category is not None:
            views = [v for v in views if category in (v.category, v.category_group)]
        return BuurtPicture(
            buurt=buurt,
            as_of=moment,
            issues=views,
            counts=Counts(
                by_status=dict(Counter(v.status for v in views)),
                by_category=dict(Counter(v.category for v in views)),
            ),
            mine=[v.id for v in views if reader.id in (v.owner, v.handover_to)],
            position=position,
        )

    def check_buurt_question(self, reader: Organisation, buurt: str, status: str) -> None:
        """Refuse a question about `buurt` that is malformed, or not `reader`'s to ask."""
        problem = buurt_code_problem(buurt)
        if problem is not None:
            raise InvalidCommand(f"buurt: {problem}")
        if status not in STATUS_FILTERS:
            raise InvalidCommand(f"status must be one of {', '.join(STATUS_FILTERS)}")
        if not self.visibility.may_see_buurt(reader, buurt):
            raise Forbidden(f"{reader.id} is not active in {buurt}")

    def _live_rows(
        self, buurt: str, status: str, owner: str | None
    ) -> tuple[list[IssueRow], int | None]:
        return self.store.issues(buurt, status, owner), self.store.live_position()

    async def issue(self, reader: Organisation, issue_id: str) -> IssueView:
        row = await self._read(self.store.issue, issue_id)
        return self.visibility.view(reader, self._visible(reader, issue_id, row), self.clock())

    async def history(self, reader: Organisation, issue_id: str) -> IssueHistory:
        row = self._visible(reader, issue_id, await self._read(self.store.issue, issue_id))
        entries = await anyio.to_thread.run_sync(self._history, reader, row)
        return IssueHistory(issue_id=issue_id, events=entries)

    def _history(self, reader: Organisation, row: IssueRow) -> list[dict[str, Any]]:
        """The entries of the issue's events, read from the log (in a worker thread)."""
        visibility = self.visibility
        content = visibility.may_see_content(reader, row)
        shown = visibility.view(reader, row, self.clock()).category
        entries = []
        for topic, version, body in self.issue_events(row.id):
            event = issue_event(topic, body)
            if event is not None:
                entries.append(
                    history_entry(
                        event,
                        version,
                        content=content,
                        personal_data=content
                        and visibility.may_see_personal_data(reader, row, event.organisation),
                        category_shown=shown,
                        unseal=self.unseal,
                    )
                )
        return entries

    async def replay(self, buurt: str, as_of: datetime) -> list[IssueRow]:
        """The buurt's rows as they were at `as_of`: its events up to then, folded afresh."""
        picture = Picture()
        async for batch in self.buurt_feed(buurt).read(None, follow=False):
            for _position, topic, version, body in batch.events:
                event = issue_event(topic, body)
                if event is not None and event.at <= as_of:
                    picture.apply(event, version)
        return list(picture.rows.values())

    def _visible(self, reader: Organisation, issue_id: str, row: IssueRow | None) -> IssueRow:
        # One answer for "no such issue" and "not yours to see": existence is need-to-know too.
        if row is None or not self.visibility.may_see(reader, row):
            raise NotFound(f"no issue {issue_id[:128]!r} that {reader.id} may see")
        return row

    async def _read(self, read: Callable[..., T], *args: Any) -> T:
        if self.store.reads_inline:
            return read(*args)
        return await anyio.to_thread.run_sync(read, *args)


def _filtered(
    rows: Iterable[IssueRow], status: str, owner: str | None, category: str | None
) -> list[IssueRow]:
    return [
        r
        for r in rows
        if (
            (status == ALL or (r.is_open if status == OPEN else r.status == status))
            and (owner is None or r.owner == owner)
            and (category is None or r.category == category)
        )
    ]
