"""A buurt's live picture as JSON, put together from the kept issues' encoded views.

`BuurtAnswers.encoded` gives, byte for byte, what encoding
`PictureQueries.buurt_issues` gives for the live picture (no `asOf`) of an open
status, but reads from `LiveBuurten` instead of decoding every row and building
every view again. Per reader and question (filters), which issues show, each
with or without its content, with the counts and `mine`, is worked out once per
state of the buurt (`Selection`, kept in the buurt's memo until an issue in it
changes); an answer then only writes each issue's age and its own `asOf`.
Other questions (closed statuses, an `asOf`) are `PictureQueries`' as before.

A selection is kept per reader (the `Organisation` itself, kind and buurten
included), never shared between readers: need-to-know decides per reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from projections.changes import PictureChanges
from projections.live_buurten import DEFAULT_BUDGET_BYTES, BuurtIssues, LiveBuurten, microseconds
from projections.picture import CLOSED, STATUSES
from projections.queries import Counts, PictureQueries
from projections.store import OPEN
from services.registries import Organisation

# The statuses whose issues are all open, so `LiveBuurten` holds them.
LIVE_STATUSES = frozenset({OPEN, *(s for s in STATUSES if s not in CLOSED)})
# Bytes of a selection beyond the views it refers to (list slots, tuples), per issue.
SELECTED_ISSUE_BYTES = 80
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Selection:
    """What one reader sees of one state of a buurt, for one question, but for the time."""

    # (head, opened at in microseconds, tail) of each view shown, in the picture's order.
    views: list[tuple[bytes, int, bytes]]
    # `],"counts":…,"mine":…,"position":`: the answer after its issues, but for the position.
    rest: bytes

    def encoded(self, buurt: str, now: datetime, position: int | None) -> bytes:
        """The answer at `now`: a `BuurtPicture` as msgspec encodes it."""
        now_us = microseconds(now)
        parts = [b'{"buurt":', _encode(buurt), b',"asOf":', _encode(now), b',"issues":[']
        for head, opened_us, tail in self.views:
            age = now_us - opened_us
            parts += (head, b"%d" % (age // 1_000_000 if age > 0 else 0), tail, b",")
        if self.views:
            parts.pop()
        parts += (self.rest, _encode(position), b"}")
        return b"".join(parts)


class BuurtAnswers:
    """Encoded answers to `GET …/buurten/{buurt}/issues`, live ones from kept buurten."""

    def __init__(
        self,
        queries: PictureQueries,
        changes: PictureChanges,
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self.queries = queries
        self.live = LiveBuurten(
            queries.store, changes, queries.visibility, budget_bytes=budget_bytes
        )

    async def encoded(
        self,
        reader: Organisation,
        buurt: str,
        *,
        status: str = OPEN,
        owner: str | None = None,
        category: str | None = None,
        as_of: datetime | None = None,
    ) -> bytes:
        """`queries.buurt_issues(…)`, encoded; refused the same way."""
        if as_of is not None or status not in LIVE_STATUSES:
            picture = await self.queries.buurt_issues(
                reader, buurt, status=status, owner=owner, category=category, as_of=as_of
            )
            return _encode(picture)
        self.queries.check_buurt_question(reader, buurt, status)
        kept, position = await self.live.current(buurt)
        key = (reader, status, owner, category)
        selection: Selection | None = kept.memo.get(key)
        if selection is None:
            selection = self.select(kept, reader, status, owner, category)
            kept.remember(key, selection, len(selection.views) * SELECTED_ISSUE_BYTES)
        return selection.encoded(buurt, self.queries.clock(), position)

    def select(
        self,
        kept: BuurtIssues,
        reader: Organisation,
        status: str,
        owner: str | None,
        category: str | None,
    ) -> Selection:
        """What `reader` sees of `kept` for the question: as `PictureQueries.buurt_issues` picks."""
        visibility = self.queries.visibility
        views = []
        by_status: dict[str, int] = {}
        by_category: dict[str, int] = {}
        mine = []
        for issue in kept.ordered():
            if status != OPEN and issue.status != status:
                continue
            if owner is not None and issue.owner != owner:
                continue
            if not visibility.may_see(reader, issue):
                continue
            view = issue.content if visibility.may_see_content(reader, issue) else issue.bare
            assert view is not None  # content shows to everyone for an `open` issue
            if category is not None and category not in (view.category, issue.group):
                continue
            views.append((view.head, issue.opened_us, view.tail))
            by_status[issue.status] = by_status.get(issue.status, 0) + 1
            by_category[view.category] = by_category.get(view.category, 0) + 1
            if reader.id in (issue.owner, issue.handover_to):
                mine.append(issue.id)
        counts = Counts(by_status=by_status, by_category=by_category)
        rest = b'],"counts":' + _encode(counts) + b',"mine":' + _encode(mine) + b',"position":'
        return Selection(views, rest)
