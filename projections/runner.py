"""The projection runner: the event log, folded into the view store, exactly once.

Read a batch from the feed, decode the issue events as lean as the fold needs
them (`projections.reading.picture_event`), fold each into its row
(`projections.picture.apply`), and commit the changed rows together with the
position of the last event read, in one transaction of the view database.
After a crash the runner starts from the committed position, so no event is
applied twice or lost.

When to commit (`ProjectionRunner._due`): following the live log, as soon as
nothing more is waiting (and within `max_delay` while more keeps coming), so
a new event is visible at once. Replaying a backlog, each row is written as
few times as memory allows: once per window of `catch_up_events` positions,
the rows of the issues closed (resolved, merged) meanwhile are written and
leave memory, as few events follow those; the open ones stay in memory,
changed, until the backlog has been read, and are then written with the
position (or sooner, once `window_rows` rows wait to be written). So most
rows of a replay are written once, however many windows an issue's life
spans. While one commit is written (in a worker thread, where the database
does not hold the GIL), the next window is read and folded. A large commit
on a store that writes transactions side by side (PostgreSQL: a server
process per connection) goes in parts, each a transaction, then the position
(`ProjectionRunner._write_in_parts`): the last commit of a replay, which
nothing overlaps, takes the two cores instead of one. On a store with one
writer, a commit's transaction takes its rows in pieces, each written while
the next is encoded (`ProjectionRunner._write_as_encoded`). While replaying
a backlog the cyclic garbage collector leaves the fold's objects alone
(`uncollected`); once the commits of a long catch-up have landed, memory is
given back.

Rows written before the position that covers them are ahead of it, never
behind: after a crash the runner reads again from the committed position,
and `apply` skips what a row already holds (each event carries its issue's
version), so nothing is applied twice. Each stored row is always its issue
as it was at some moment.

When a rebuild has made another generation live, the next commit says so
(`ViewStore.commit` returns False); the live runner then follows that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import queue
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import anyio.to_thread
import structlog

from projections.feeds import Batch, Feed
from projections.picture import CLOSED, IssueRow, apply
from projections.picture_events import FoldedEvent, folded_event_decoder
from projections.reading import ISSUE_TOPICS, picture_event
from projections.store import Record, ViewStore

log = structlog.get_logger(__name__)
decode = folded_event_decoder.decode

# Rows kept in memory between batches; beyond this the committed ones are dropped.
CACHE_ROWS = 50_000
# Positions folded into one commit while replaying a backlog (see `ProjectionRunner._due`).
CATCH_UP_EVENTS = 100_000
# Near the end of a backlog windows halve, down to this many positions.
SMALLEST_WINDOW = 5_000
# Rows a commit has at least per part, when the store writes parts side by side.
COMMIT_PART = 10_000
# Rows encoded at a time for a commit written as it is encoded (`_write_as_encoded`).
ENCODED_PIECE = 5_000
# Rows changed and not yet written, at most: with their signals ~3 KB each in memory.
WINDOW_ROWS = 60_000
# Events read before catching up that make it worth giving memory back.
LONG_CATCH_UP = 100_000
RETRY_SECONDS = 1.0
# What a commit writes (`ProjectionRunner._due`): every changed row and the position, or
# only the rows of issues closed since they were last written.
WHOLE = "whole"
CLOSED_ROWS = "closed rows"


@dataclass(frozen=True, slots=True)
class Committed:
    """What one commit changed: for live updates (SSE) and freshness measurements."""

    generation: int
    # The position committed (with these rows or before them); None before the first.
    position: int | None
    rows: Sequence[IssueRow]
    committed_at: float = field(default_factory=time.time)


OnCommit = Callable[[Committed], Awaitable[None] | None]


@dataclass
class Progress:
    """How far a replay is: events read, issue events applied, the position reached
    and the position committed."""

    read: int = 0
    applied: int = 0
    position: int | None = None
    committed: int | None = None
    pending: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def events_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


def give_back_memory() -> None:
    """Return the heap a long catch-up freed to the system: glibc keeps it otherwise,
    and the process would stay as large as at its busiest moment."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextlib.contextmanager
def uncollected(*, freeze: bool) -> Iterator[None]:
    """No cyclic garbage collection inside the block; with `freeze`, nor later of what
    the block allocated (until `thaw`).

    A batch folds thousands of events into rows that live on, and frees the
    rest by reference counting: the cyclic collector finds nothing to do, yet
    walked the batch's objects and then, ever more often, all the rows: a
    quarter of a replay. So while a backlog is replayed, what the fold
    allocated is frozen (`gc.freeze`: process-wide, as the collector is) and
    thawed when the replay is done (`thaw`); live batches are collected as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def thaw(*, refreeze: bool, give_back: bool) -> None:
    """Let the collector see again what `uncollected` froze.

    `gc.unfreeze` cannot tell what we froze from what others did (`buurtbeeld
    up` freezes what start-up made, `services.gc_pauses`): with `refreeze`,
    whatever is alive after one collection is frozen again, as start-up's was.
    With `give_back`, the heap a long catch-up freed goes back to the system.
    """
    gc.unfreeze()
    if refreeze or give_back:
        gc.collect()
    if give_back:
        give_back_memory()
    if refreeze:
        gc.freeze()


class _Rows(dict[str, IssueRow]):
    """The rows in memory, and which others the database may hold.

    In a fresh generation (nothing committed when the run began) the database
    holds only rows this run wrote and then dropped from memory: any other id
    is a new issue, and asking the database for it is wasted.
    """

    def __init__(self, *, fresh: bool) -> None:
        super().__init__()
        self.fresh = fresh
        self.dropped: set[str] = set()

    def missing(self, issue_ids: set[str]) -> set[str]:
        """Of `issue_ids`, those not in memory (the database may hold them)."""
        return issue_ids - self.keys()

    def forget(self, ids: Iterable[str], keep: dict[str, IssueRow]) -> None:
        """Drop the rows of `ids`, just written, but those changed since (in `keep`).

        By id: the rows themselves were last touched long ago (written), and
        reading each again would cost a trip to memory."""
        gone = [issue_id for issue_id in ids if issue_id not in keep]
        for issue_id in gone:
            self.pop(issue_id, None)
        if self.fresh:
            self.dropped.update(gone)

    def shrink(self, limit: int, keep: dict[str, IssueRow]) -> None:
        """Drop committed rows: closed ones first (few events follow those), all if need be.

        `keep`: rows changed since the last commit, which only memory holds. When
        fewer than a quarter of `limit` could go, none go: it would not be worth a
        look at every row.
        """
        if len(self) - len(keep) < limit // 4:
            return
        closed = [i for i, row in self.items() if row.status in CLOSED and i not in keep]
        for issue_id in closed:
            del self[issue_id]
        if self.fresh:
            self.dropped.update(closed)
        if len(self) > limit * 3 // 4:
            committed = [issue_id for issue_id in self if issue_id not in keep]
            for issue_id in committed:
                del self[issue_id]
            if self.fresh:
                self.dropped.update(committed)


def _taken_from(
    handed: queue.SimpleQueue[Sequence[Record] | BaseException | None],
) -> Iterator[Sequence[Record]]:
    """The records put into `handed`, as they come, until None; an exception put is raised."""
    while (taken := handed.get()) is not None:
        if isinstance(taken, BaseException):
            raise taken
        yield taken


class Retired(Exception):
    """The generation being written is no longer live (a rebuild switched over)."""


class _ReadBack:
    """Rows written and dropped from memory that events need again (a reopened issue's),
    read back in a worker thread while the fold goes on.

    Their events wait here, by issue and in order, and are applied once the
    row has been read (`land`). Read on the event loop's thread, each row held
    the fold up ~0.2 ms (the view database's reader finds its pages gone after
    every commit): in the replay benchmark ~3,000 rows, 0.5-0.85 s of its ~11.
    """

    def __init__(self, store: ViewStore, generation: int) -> None:
        self.store = store
        self.generation = generation
        self.waiting: dict[str, list[tuple[FoldedEvent, int]]] = {}
        self.reading: asyncio.Future[dict[str, IssueRow]] | None = None
        self.asked: list[str] = []

    def start(self) -> None:
        """Read the rows of the waiting events, if not under way already."""
        if self.reading is None and self.waiting:
            self.asked = list(self.waiting)
            self.reading = asyncio.ensure_future(anyio.to_thread.run_sync(self._load, self.asked))

    def _load(self, ids: list[str]) -> dict[str, IssueRow]:
        return self.store.load(self.generation, ids, folded=True)

    def land(self, cache: _Rows, window: _Window) -> None:
        """Apply the waiting events of the rows read, if they have been; read the next."""
        if self.reading is None or not self.reading.done():
            return
        reading, self.reading = self.reading, None
        stored = reading.result()
        cache.dropped.difference_update(self.asked)
        for issue_id in self.asked:
            row = stored.get(issue_id)
            for event, version in self.waiting.pop(issue_id):
                row = apply(row, event, version)
            if row is not None:
                cache[issue_id] = window.rows[issue_id] = row
        self.start()

    async def all_landed(self, cache: _Rows, window: _Window) -> None:
        """Every waiting event applied: before a commit, which may carry the position."""
        while self.reading is not None:
            await asyncio.wait({self.reading})
            self.land(cache, window)

    async def close(self) -> None:
        if self.reading is not None:
            self.reading.cancel()
            with contextlib.suppress(BaseException):
                await self.reading


@dataclass
class _Window:
    """What was folded and is not written yet: the next commits' content."""

    # Rows changed since they were last written.
    rows: dict[str, IssueRow] = field(default_factory=dict)
    # Log positions moved since the position was last committed (a batch without
    # issue events still moves one), and since the last commit began.
    moved: int = 0
    since: int = 0
    started: float = field(default_factory=time.monotonic)


class ProjectionRunner:
    """Folds `feed` into one generation of `store`."""

    def __init__(
        self,
        store: ViewStore,
        feed: Feed,
        *,
        on_commit: OnCommit | None = None,
        max_delay: float = 0.02,
        catch_up_events: int = CATCH_UP_EVENTS,
        window_rows: int = WINDOW_ROWS,
        commit_part: int = COMMIT_PART,
    ) -> None:
        self.store = store
        self.feed = feed
        self.on_commit = on_commit
        self.max_delay = max_delay
        self.catch_up_events = catch_up_events
        self.window_rows = window_rows
        self.commit_part = commit_part
        # Folding goes on while a commit is written, up to a window's worth.
        self.most_uncommitted = catch_up_events
        self.progress = Progress()

    async def follow(self, stop: asyncio.Event) -> None:
        """Keep the live generation current until `stop`; follow a rebuild's switch."""
        while not stop.is_set():
            generation = await anyio.to_thread.run_sync(self.store.current_generation)
            log.info("projection.following", generation=generation)
            try:
                await self.run(generation, stop=stop)
            except Retired:
                log.info("projection.switched", retired=generation)
            except Exception as e:  # the view database or NATS away: try again shortly
                if await self._retired(generation):  # its tables went while we read them
                    log.info("projection.switched", retired=generation)
                    continue
                log.warning("projection.retrying", error=repr(e), generation=generation)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_SECONDS)

    async def _retired(self, generation: int) -> bool:
        try:
            current = await anyio.to_thread.run_sync(self.store.current_generation)
        except Exception:
            return False
        return current != generation

    async def run(
        self,
        generation: int,
        *,
        stop: asyncio.Event | None = None,
        follow: bool = True,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Fold the log into `generation` from its committed position.

        With `follow` False, return once the log has been read to its end.
        Raises `Retired` when `generation` stopped being live.
        """
        position = await anyio.to_thread.run_sync(self.store.position, generation)
        progress = self.progress = Progress(position=position, committed=position)
        cache = _Rows(fresh=position is None)
        read_back = _ReadBack(self.store, generation)
        window = _Window()
        in_flight: asyncio.Task[bool] | None = None
        caught_up = False
        # Once the commits of the catch-up have landed: the collector as it was, and
        # (after a long one) memory back to the system.
        settle = False
        thawed = False
        frozen_before = gc.get_freeze_count() > 0
        batches = aiter(self.feed.read(position, follow=follow))
        next_batch: asyncio.Task[Batch] | None = None
        try:
            while stop is None or not stop.is_set():
                if next_batch is None:
                    next_batch = asyncio.ensure_future(anext(batches))
                waiting: set[asyncio.Future[object]] = {next_batch}  # type: ignore[arg-type]
                stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
                if stopped is not None:
                    waiting.add(stopped)  # type: ignore[arg-type]
                if in_flight is not None:  # its outcome may be "retired": hear it at once
                    waiting.add(in_flight)  # type: ignore[arg-type]
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=self._patience(window, progress, follow, writing=in_flight is not None),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stopped is not None:
                    stopped.cancel()
                if in_flight is not None and in_flight.done():
                    finished, in_flight = in_flight, None
                    await self._finish(finished)
                    if len(cache) > CACHE_ROWS:  # all committed but the window: kept
                        cache.shrink(CACHE_ROWS, keep=window.rows)
                    if settle:  # the first commit since catching up: the backlog is gone
                        settle, thawed = False, True
                        thaw(refreeze=True, give_back=progress.read >= LONG_CATCH_UP)
                if next_batch in done:
                    task, next_batch = next_batch, None
                    try:
                        batch = task.result()
                    except StopAsyncIteration:
                        break
                    with uncollected(freeze=not caught_up):
                        self._fold(batch, generation, cache, window, progress, read_back)
                    if on_progress is not None:
                        on_progress(progress)
                    if follow and not caught_up and progress.pending == 0:
                        caught_up = settle = True
                due = self._due(window, progress, follow) if window.moved else None
                if due is None:
                    continue
                if in_flight is not None:
                    # While the database writes one commit, keep folding: the next one
                    # starts when it is done, and carries every row changed meanwhile.
                    if not self._full(window):
                        continue
                    await self._finish(in_flight)
                    in_flight = None
                if len(cache) > CACHE_ROWS:
                    # Everything is written now, but for the window: kept, it is next.
                    cache.shrink(CACHE_ROWS, keep=window.rows)
                await read_back.all_landed(cache, window)
                in_flight, window = self._start_commit(generation, window, progress, due, cache)
            if window.moved:
                if in_flight is not None:
                    await self._finish(in_flight)
                await read_back.all_landed(cache, window)
                in_flight, window = self._start_commit(generation, window, progress, WHOLE, cache)
            if in_flight is not None:
                await self._finish(in_flight)
        finally:
            await read_back.close()
            if not thawed:
                thaw(refreeze=frozen_before or caught_up, give_back=False)
            if in_flight is not None and not in_flight.done():
                # A commit under way is a whole one: let it land, whatever stopped us.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(in_flight)
            if next_batch is not None:
                next_batch.cancel()
                with contextlib.suppress(BaseException):
                    await next_batch
            await batches.aclose()  # type: ignore[attr-defined]
        return progress

    def _full(self, window: _Window) -> bool:
        """Whether the window holds as much as memory should: wait for the commit before."""
        return window.since >= self.most_uncommitted or len(window.rows) >= self.window_rows

    def _live(self, progress: Progress, follow: bool) -> bool:
        """Following the log as it is written, not replaying a backlog."""
        return follow and progress.pending < self.catch_up_events

    def _due(self, window: _Window, progress: Progress, follow: bool) -> str | None:
        """What to commit of the window now (once no commit is being written), if anything.

        Following, everything at once when nothing more is waiting in the log,
        and within `max_delay` when more keeps coming. Replaying a backlog, the
        closed issues' rows every `catch_up_events` positions (windows halve
        near its end, so that the last commit, which nothing overlaps, is
        small), everything at its end; everything sooner when `window_rows`
        rows wait to be written.
        """
        if len(window.rows) >= self.window_rows:
            return WHOLE
        if self._live(progress, follow):
            if progress.pending == 0 or time.monotonic() - window.started >= self.max_delay:
                return WHOLE
            return None
        if window.since >= min(self.catch_up_events, max(progress.pending, SMALLEST_WINDOW)):
            return CLOSED_ROWS
        return None

    def _patience(
        self, window: _Window, progress: Progress, follow: bool, *, writing: bool
    ) -> float | None:
        """How long to wait for the next batch before the window is due anyway.

        While a commit is being written, no longer than until it is done: the
        window goes next, whatever the time.
        """
        if writing or not (window.moved and self._live(progress, follow)):
            return None
        return max(0.0, self.max_delay - (time.monotonic() - window.started))

    def _fold(
        self,
        batch: Batch,
        generation: int,
        cache: _Rows,
        window: _Window,
        progress: Progress,
        read_back: _ReadBack,
    ) -> None:
        """Apply `batch` to the rows in memory; the window gets what changed.

        Each event is decoded just before it is applied, while its objects are
        at hand in the processor's cache. Rows not in memory: in a fresh
        generation, only those written and dropped can be stored; the few
        events of those (a reopened issue's) wait while their rows are read
        back beside the fold (`_ReadBack`). Otherwise the rows of the whole
        batch are read from the database at once, before folding.
        """
        decoded: Iterable[tuple[FoldedEvent | None, int]] = (
            (decode(body) if topic in ISSUE_TOPICS else picture_event(topic, body), version)
            for _position, topic, version, body in batch.events
        )
        if not cache.fresh:
            decoded = list(decoded)
            missing = cache.missing({e.issue_id for e, _ in decoded if e is not None})
            if missing:
                cache.update(self.store.load(generation, missing, folded=True))
        read_back.land(cache, window)
        get, changed, dropped = cache.get, window.rows, cache.dropped
        waiting = read_back.waiting
        applied = 0
        for event, version in decoded:
            if event is None:
                continue
            applied += 1
            issue_id = event.issue_id
            row = get(issue_id)
            if row is None and (issue_id in dropped or issue_id in waiting):
                waiting.setdefault(issue_id, []).append((event, version))
                continue
            row = apply(row, event, version)
            if row is not None:
                cache[issue_id] = changed[issue_id] = row
        read_back.start()
        progress.read += len(batch.events)
        progress.applied += applied
        progress.pending = batch.pending
        if batch.last is None or (
            progress.position is not None and batch.last <= progress.position
        ):
            return
        if not window.moved:
            window.started = time.monotonic()
        moved = len(batch.events) or 1
        window.moved += moved
        window.since += moved
        progress.position = batch.last

    def _start_commit(
        self, generation: int, window: _Window, progress: Progress, what: str, cache: _Rows
    ) -> tuple[asyncio.Task[bool] | None, _Window]:
        """Start writing `what` (`WHOLE`, `CLOSED_ROWS`) of `window`; the commit under
        way (None if there was nothing to write), and the window that follows.

        Closed issues' rows leave memory once written (unless changed meanwhile)."""
        position: int | None
        closed: dict[str, IssueRow] = {}  # written without the position: leave memory after
        if what == WHOLE:
            assert progress.position is not None
            position = progress.position
            rows = list(window.rows.values())
            following = _Window()
        else:  # the position stays: the open rows' changes are not written yet
            position = None
            closed = {i: row for i, row in window.rows.items() if row.status in CLOSED}
            following = window
            window.since = 0
            for issue_id in closed:
                del window.rows[issue_id]
            if not closed:
                return None, following
            rows = list(closed.values())
        parts = self._parts(rows)
        if len(parts) == 1:
            written = self._write_as_encoded(generation, rows, position)
        else:
            with uncollected(freeze=False):
                first = self.store.records(parts[0])

        async def commit() -> bool:
            if len(parts) == 1:
                ok = await written
            else:
                ok = await self._write_in_parts(generation, first, parts[1:], position)
            if ok and position is not None:
                progress.committed = position
            if ok and position is None:
                cache.forget(closed, keep=following.rows)
            if ok and self.on_commit is not None:
                result = self.on_commit(Committed(generation, progress.committed, rows))
                if result is not None:
                    await result
            return ok

        return asyncio.ensure_future(commit()), following

    def _write_as_encoded(
        self, generation: int, rows: list[IssueRow], position: int | None
    ) -> asyncio.Future[bool]:
        """One transaction of `rows`, written while they are encoded: the writer takes
        each piece as soon as it is ready, instead of waiting for them all.

        The last commit of a replay (its ~41,000 open rows), which nothing
        overlaps, took ~0.3 s to encode and then ~0.5 s to write; the pieces
        are written while the next are encoded (the database lets go of the GIL).
        """
        store = self.store
        pieces = [rows[at : at + ENCODED_PIECE] for at in range(0, len(rows), ENCODED_PIECE)]
        handed: queue.SimpleQueue[Sequence[Record] | BaseException | None] = queue.SimpleQueue()
        with uncollected(freeze=False):
            first = store.records(pieces[0] if pieces else rows)
        # An executor's future starts its thread at once (see `_write_in_parts`).
        written = asyncio.get_running_loop().run_in_executor(
            None, store.commit, generation, first, position, _taken_from(handed)
        )
        try:
            for piece in pieces[1:]:
                with uncollected(freeze=False):
                    handed.put(store.records(piece))
        except BaseException as e:  # the transaction is undone, and the commit fails with it
            handed.put(e)
        else:
            handed.put(None)
        return written

    def _parts(self, rows: list[IssueRow]) -> list[list[IssueRow]]:
        """`rows` in as many parts as the store writes side by side, if there are enough."""
        ways = self.store.parallel_writes
        if ways <= 1 or len(rows) < ways * self.commit_part:
            return [rows]
        return [rows[way::ways] for way in range(ways)]

    async def _write_in_parts(
        self,
        generation: int,
        first: Sequence[Record],
        rest: Sequence[Sequence[IssueRow]],
        position: int | None,
    ) -> bool:
        """A large commit written side by side, in parts, then its position.

        Each part is a transaction of its own, written as soon as it is encoded;
        the position (if any) once all have landed: until then their rows are
        ahead of it (see the module's docstring). Every part is waited for, also
        when one fails, so that none lands after a retry has begun.
        """
        loop = asyncio.get_running_loop()
        store = self.store
        # An executor's future starts its thread at once (an anyio call would start only
        # once the loop turns, after the next part has been encoded).
        writes = [loop.run_in_executor(None, store.commit, generation, first, None)]
        for part in rest:
            with uncollected(freeze=False):
                records = store.records(part)
            writes.append(loop.run_in_executor(None, store.commit, generation, records, None))
        landed = await asyncio.gather(*writes, return_exceptions=True)
        for outcome in landed:
            if isinstance(outcome, BaseException):
                raise outcome
        if not all(landed):
            return False
        if position is None:
            return True
        return await anyio.to_thread.run_sync(store.commit, generation, (), position)

    @staticmethod
    async def _finish(commit: asyncio.Task[bool]) -> None:
        if not await commit:
            raise Retired
