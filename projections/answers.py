"""A buurt's live picture as JSON, put together from the kept issues' encoded views.

`BuurtAnswers.answer` gives, byte for byte, what encoding
`PictureQueries.buurt_issues` gives for the live picture (no `asOf`) of an open
status, but reads from `LiveBuurten` instead of decoding every row and building
every view again. Per reader and question (filters), which issues show, each
with or without its content, with the counts and `mine`, is worked out once per
state of the buurt (`Selection`, kept in the buurt's memo until an issue in it
changes); an answer then only writes each issue's age and its own `asOf`.
Other questions (closed statuses, an `asOf`, a buurt there is no room to keep)
are `PictureQueries`' as before.

The last answers written are kept too (`RecentAnswers`, a few MB) and given
again while their selection is current and they are younger than
`ANSWER_MAX_AGE`: their `asOf` and ages are then up to that old, the issues
are as of the latest commit, and so is the position they give. A kept answer
given `GZIP_AFTER` times, asked for in gzip (an HTTP client that accepts it),
is compressed then, once (`GzippedPrefix`): the answers polled most go ~6x
smaller, while a buurt that changes before its answer is given that often
costs no compressing (~1 ms for 260 KB, more than a few plain answers cost).

A selection is kept per reader (the `Organisation` itself, kind and buurten
included), never shared between readers: need-to-know decides per reader.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

import msgspec

from projections.buurt_issues import BuurtIssues, microseconds
from projections.changes import PictureChanges
from projections.gzipped import GzippedPrefix
from projections.live_buurten import DEFAULT_BUDGET_BYTES, IDLE_SECONDS, LiveBuurten
from projections.picture import CLOSED, STATUSES
from projections.queries import Counts, PictureQueries
from projections.store import OPEN
from services.registries import Organisation

# The statuses whose issues are all open, so `LiveBuurten` holds them.
LIVE_STATUSES = frozenset({OPEN, *(s for s in STATUSES if s not in CLOSED)})
# Bytes of a selection beyond the views it refers to (list slots, tuples), per issue.
SELECTED_ISSUE_BYTES = 80
ANSWER_MAX_AGE = 1.0
ANSWERS_BUDGET_BYTES = 4 * 1024 * 1024
# Times a kept answer is given as it is before one asking for gzip gets it compressed.
GZIP_AFTER = 32
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Selection:
    """What one reader sees of one state of a buurt, for one question, but for the time."""

    # (head, opened at in microseconds, tail) of each view shown, in the picture's order.
    views: list[tuple[bytes, int, bytes]]
    # `],"counts":…,"mine":…,"position":`: what follows the issues, but for the position.
    rest: bytes

    def encoded(self, buurt: str, now: datetime) -> bytes:
        """The answer at `now` up to its position: a `BuurtPicture` as msgspec encodes it."""
        now_us = microseconds(now)
        parts = [b'{"buurt":', _encode(buurt), b',"asOf":', _encode(now), b',"issues":[']
        for head, opened_us, tail in self.views:
            age = now_us - opened_us
            parts += (head, b"%d" % (age // 1_000_000 if age > 0 else 0), tail, b",")
        if self.views:
            parts.pop()
        parts.append(self.rest)
        return b"".join(parts)


def with_position(answer: bytes, position: int | None) -> bytes:
    """An answer written up to its position, finished."""
    return b"".join((answer, ending_at(position)))


def ending_at(position: int | None) -> bytes:
    """What finishes an answer written up to its position."""
    return _encode(position) + b"}"


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer's bytes, and whether they are gzip (as asked) or the JSON itself."""

    body: bytes
    gzipped: bool = False


@dataclass(slots=True)
class _Finished:
    """A kept answer finished at a position, kept while asked at that position."""

    position: int | None
    body: bytes


@dataclass(slots=True)
class _Written:
    selection: Selection
    written_at: float
    # Up to the position; times given (written, then each `get`); in gzip once asked so.
    answer: bytes
    given: int = 1
    gzipped: GzippedPrefix | None = None
    # Finished at the position last asked, as JSON and as gzip (the same bytes again).
    finished: _Finished | None = None
    finished_gzip: _Finished | None = None

    @property
    def size(self) -> int:
        return sum(
            len(b)
            for b in (
                self.answer,
                self.gzipped.start if self.gzipped else b"",
                self.finished.body if self.finished else b"",
                self.finished_gzip.body if self.finished_gzip else b"",
            )
        )


class RecentAnswers:
    """The answers written last, by question, each with the selection it was written from.

    Bounded by `budget_bytes` of answers (as written, finished, and in gzip),
    oldest out first; a kept answer also keeps its selection's views alive (the
    buurt's, even once `LiveBuurten` let it go).
    """

    def __init__(
        self,
        *,
        max_age: float = ANSWER_MAX_AGE,
        budget_bytes: int = ANSWERS_BUDGET_BYTES,
        gzip_after: int = GZIP_AFTER,
    ) -> None:
        self.max_age = max_age
        self.budget_bytes = budget_bytes
        self.gzip_after = gzip_after
        self.size = 0
        self._answers: OrderedDict[Hashable, _Written] = OrderedDict()

    def get(self, key: Hashable, selection: Selection, position: int | None) -> bytes | None:
        """The answer kept for `key`, finished at `position`, if written from `selection` and
        young enough; asked again at the same position, the same bytes (no copy)."""
        written = self._current(key, selection)
        if written is None:
            return None
        written.given += 1
        finished = written.finished
        if finished is None or finished.position != position:
            finished = _Finished(position, with_position(written.answer, position))
            self._grown(written, finished=finished)
        return finished.body

    def get_gzipped(
        self, key: Hashable, selection: Selection, position: int | None
    ) -> bytes | None:
        """`get(…)` in gzip, once the kept answer was given `gzip_after` times (written and
        given again): compressed the first time it is asked so then."""
        written = self._current(key, selection)
        if written is None or (written.gzipped is None and written.given < self.gzip_after):
            return None
        gzipped = written.gzipped or GzippedPrefix.of(written.answer)
        finished = written.finished_gzip
        if finished is None or finished.position != position:
            finished = _Finished(position, gzipped.finished(ending_at(position)))
            self._grown(written, gzipped=gzipped, finished_gzip=finished)
        return finished.body

    def put(self, key: Hashable, selection: Selection, answer: bytes) -> None:
        """Keep `answer`, written from `selection` up to its position."""
        self._drop(key)
        self._answers[key] = _Written(selection, time.monotonic(), answer)
        self.size += len(answer)
        self._trim()

    def _current(self, key: Hashable, selection: Selection) -> _Written | None:
        written = self._answers.get(key)
        if written is None:
            return None
        if (
            written.selection is not selection
            or time.monotonic() - written.written_at > self.max_age
        ):
            self._drop(key)
            return None
        return written

    def _grown(self, written: _Written, **parts: object) -> None:
        before = written.size
        for name, part in parts.items():
            setattr(written, name, part)
        self.size += written.size - before
        self._trim()

    def _trim(self) -> None:
        while self.size > self.budget_bytes:
            self._drop(next(iter(self._answers)))

    def _drop(self, key: Hashable) -> None:
        written = self._answers.pop(key, None)
        if written is not None:
            self.size -= written.size


class BuurtAnswers:
    """Encoded answers to `GET …/buurten/{buurt}/issues`, live ones from kept buurten."""

    def __init__(
        self,
        queries: PictureQueries,
        changes: PictureChanges,
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        idle_seconds: float = IDLE_SECONDS,
        recent: RecentAnswers | None = None,
    ) -> None:
        self.queries = queries
        self.live = LiveBuurten(
            queries.store,
            changes,
            queries.visibility,
            budget_bytes=budget_bytes,
            idle_seconds=idle_seconds,
        )
        self.recent = recent if recent is not None else RecentAnswers()

    async def answer(
        self,
        reader: Organisation,
        buurt: str,
        *,
        status: str = OPEN,
        owner: str | None = None,
        category: str | None = None,
        as_of: datetime | None = None,
        gzip: bool = False,
    ) -> Answer:
        """`queries.buurt_issues(…)`, encoded, refused the same way; in gzip if `gzip` is
        accepted and the answer is a kept one given often (a polled buurt's)."""
        live = None
        if as_of is None and status in LIVE_STATUSES:
            self.queries.check_buurt_question(reader, buurt, status)
            live = await self.live.current(buurt)
        if live is None:
            picture = await self.queries.buurt_issues(
                reader, buurt, status=status, owner=owner, category=category, as_of=as_of
            )
            return Answer(_encode(picture))
        kept, position = live
        key = (reader, status, owner, category)
        selection: Selection | None = kept.memo.get(key)
        if selection is None:
            selection = self.select(kept, reader, status, owner, category)
            kept.remember(key, selection, len(selection.views) * SELECTED_ISSUE_BYTES)
        answered = (buurt, key)
        if gzip and (body := self.recent.get_gzipped(answered, selection, position)):
            return Answer(body, gzipped=True)
        answer = self.recent.get(answered, selection, position)
        if answer is None:
            written = selection.encoded(buurt, self.queries.clock())
            self.recent.put(answered, selection, written)
            answer = with_position(written, position)
        return Answer(answer)

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
