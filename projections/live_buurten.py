"""The open issues of the buurten asked about lately, kept in memory as encoded views.

A buurt's live picture is read from the view store once; after that only the
issues a commit changed are read again (`PictureChanges` says which, by buurt
and id), and only a changed issue is encoded again: its views (with and without
content, `Visibility.encoded_view`) are kept by (issue, version). So an answer
after a commit that changed one issue in the buurt costs one row, not two
hundred, and a commit elsewhere costs nothing here.

Current means: every commit announced before the answer is in it. Before
answering, the announcements are taken (synchronously, so none slips in
between) and every issue they name in a kept buurt is read again; the answer's
position is then the announced one. (Only the announced rows' buurt and id
are used, which never change: the rows are the runner's own objects, which it
goes on folding events into before the next commit.) A dropped announcement (a
listener that fell behind, `None`) or another generation makes every kept buurt
be read whole again.

Memory is bounded by `budget_bytes` (the encoded views plus an estimate of the
objects around them; one buurt more may be kept while it is being answered).
To make room, a buurt not asked about for `idle_seconds` goes, least recently
asked first; when all are in use, a buurt asked about for the first time is
not kept (`current` says None, the question is answered from the store): a
round of more buurten than fit would otherwise push out each before it is
asked again, and every answer would cost a read and encoding, plus the drop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import anyio.to_thread

from projections.buurt_issues import BuurtIssues
from projections.changes import PictureChanges
from projections.picture import IssueRow
from projections.runner import Committed
from projections.store import OPEN, ViewStore
from projections.visibility import Visibility

T = TypeVar("T")
# About 40 buurten of 200 open issues (~2 kB an issue, views and objects): frugal, as the
# whole process is to stay under 500 MB with a million events in its log.
DEFAULT_BUDGET_BYTES = 16 * 1024 * 1024
# A buurt not asked about for this long may make room for another.
IDLE_SECONDS = 30.0
# Changed issues in one buurt beyond which reading the buurt whole is quicker.
RELOAD_BEYOND = 32


class LiveBuurten:
    """Kept buurten by code, least recently asked first; current with every announced commit."""

    def __init__(
        self,
        store: ViewStore,
        changes: PictureChanges,
        visibility: Visibility,
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.store = store
        self.changes = changes
        self.visibility = visibility
        self.budget_bytes = budget_bytes
        self.idle_seconds = idle_seconds
        self._buurten: OrderedDict[str, BuurtIssues] = OrderedDict()
        self._announced: asyncio.Queue[Committed | None] | None = None
        self._listening: Any = None
        self._generation: int | None = None

    @property
    def size(self) -> int:
        """Bytes kept (the estimate the budget bounds)."""
        return sum(buurt.size for buurt in self._buurten.values())

    def __contains__(self, buurt: object) -> bool:
        return buurt in self._buurten

    async def current(self, buurt: str) -> tuple[BuurtIssues, int | None] | None:
        """`buurt`'s open issues with every announced commit in them, and the position announced;
        None when `buurt` is not kept and there is no room for it."""
        if self._announced is None:
            # Listening from the first question on, for as long as the process lives.
            self._listening = self.changes.subscribe()
            self._announced = await self._listening.__aenter__()
            self._generation = await self._read(self.store.current_generation)
        now = time.monotonic()
        kept = self._buurten.get(buurt)
        if kept is None:
            if not self._make_room(now):
                return None
            kept = self._buurten[buurt] = BuurtIssues(buurt)
        else:
            self._buurten.move_to_end(buurt)
        kept.asked_at = now
        read = False
        async with kept.lock:
            while True:
                self._take_announcements()
                if not kept.loaded or len(kept.stale) > RELOAD_BEYOND:
                    # What is announced while reading is read again after.
                    kept.stale.clear()
                    kept.load(await self._read(self.store.issues, buurt, OPEN), self.visibility)
                    read = True
                elif kept.stale:
                    ids, kept.stale = kept.stale, set()
                    kept.update(await self._read(self._rows_by_id, ids), self.visibility)
                    read = True
                else:
                    # No await since the announcements were taken: this is the position.
                    position = self.changes.position
                    break
        if read:
            self._make_room(now)
        return kept, position

    def _take_announcements(self) -> None:
        assert self._announced is not None
        while not self._announced.empty():
            committed = self._announced.get_nowait()
            if committed is None or committed.generation != self._generation:
                # Some were dropped, or a rebuild switched over: read every buurt afresh.
                self._generation = None if committed is None else committed.generation
                for buurt in self._buurten.values():
                    buurt.loaded = False
                    buurt.reusable = committed is None
                if committed is None:
                    continue
            for row in committed.rows:
                kept = self._buurten.get(row.buurt)
                if kept is not None:
                    kept.stale.add(row.id)

    def _rows_by_id(self, ids: Iterable[str]) -> dict[str, IssueRow | None]:
        return {issue_id: self.store.issue(issue_id) for issue_id in ids}

    def _make_room(self, now: float) -> bool:
        """Drop idle buurten, least recently asked first, until within budget; whether it is."""
        total = self.size
        for code in list(self._buurten):
            if total < self.budget_bytes:
                break
            kept = self._buurten[code]
            if now - kept.asked_at < self.idle_seconds:
                break  # this and all after it were asked more recently
            # One being read by another question stays: it must hear of the commits.
            if kept.lock.locked():
                continue
            del self._buurten[code]
            total -= kept.size
        return total < self.budget_bytes

    async def _read(self, read: Callable[..., T], *args: Any) -> T:
        if self.store.reads_inline:
            return read(*args)
        return await anyio.to_thread.run_sync(read, *args)
