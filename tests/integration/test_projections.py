"""The projection runner and view stores, on SQLite and on real PostgreSQL alike.

Every test runs on both stores (`store` fixture). Events come from the real
coordination (in memory here; on JetStream in test_projections_jetstream.py),
so the rows are checked against folding the same events in memory.
"""

from __future__ import annotations

import asyncio
import gc
import random
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from uuid import uuid4

import msgspec
import psycopg
import pytest

from projections import runner as runner_module
from projections.feeds import Batch
from projections.picture import IssueRow, Picture
from projections.reading import issue_event
from projections.rebuild import rebuild
from projections.runner import Committed, ProjectionRunner
from projections.store import (
    PAGE_BYTES,
    PostgresViewStore,
    Record,
    SQLiteViewStore,
    ViewStore,
    ViewStoreError,
)
from tests.unit.test_coordination import Clock, coordination
from tests.unit.test_picture import POPO, play, random_story, stored_events

pytestmark = pytest.mark.anyio
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
Recorded = tuple[int, str, int, bytes]


def story_events(seed: int, steps: int = 300) -> list[Recorded]:
    """What the real coordination stores for a long random story (receipts included)."""
    clock = Clock()
    app = coordination(POPO, clock)
    play(app, clock, random_story(random.Random(seed), steps))
    return stored_events(app)


def folded(events: list[Recorded]) -> dict[str, bytes]:
    picture = Picture()
    for _, topic, version, body in events:
        event = issue_event(topic, body)
        if event is not None:
            picture.apply(event, version)
    return {k: msgspec.json.encode(v) for k, v in picture.rows.items()}


def story_rows_at_least(count: int, *, seed: int) -> list[IssueRow]:
    """A story's folded rows, again and again under new ids, until there are `count`."""
    story = [msgspec.json.decode(b, type=IssueRow) for b in folded(story_events(seed)).values()]
    rows = [
        msgspec.structs.replace(row, id=f"{row.id}-{n}")
        for n in range(count // len(story) + 1)
        for row in story
    ]
    assert len(rows) >= count
    return rows


def stored_rows(store: ViewStore, generation: int) -> dict[str, bytes]:
    with store._reading() as cur:
        cur.execute(f"SELECT body FROM {store._issues(generation)}")
        bodies = [bytes(body) for (body,) in cur.fetchall()]
    rows = [msgspec.json.decode(b, type=IssueRow) for b in bodies]
    return {r.id: msgspec.json.encode(r) for r in rows}


class ListFeed:
    """A feed over a list that can grow; it can be told to fail after some batches,
    or to pause after each (events that keep arriving)."""

    def __init__(
        self,
        events: list[Recorded],
        batch: int = 7,
        fail_after: int | None = None,
        pause: float = 0.0,
    ):
        self.events = events
        self.batch = batch
        self.fail_after = fail_after
        self.pause = pause
        self.asked: list[int | None] = []
        self.served = 0

    async def read(self, after: int | None, *, follow: bool = True) -> AsyncIterator[Batch]:
        self.asked.append(after)
        start = sum(1 for e in self.events if after is not None and e[0] <= after)
        while True:
            chunk = self.events[start : start + self.batch]
            if chunk:
                if self.fail_after is not None and self.served >= self.fail_after:
                    raise ConnectionError("the event store went away")
                self.served += 1
                start += len(chunk)
                yield Batch(chunk, len(self.events) - start, chunk[-1][0])
                if self.pause:
                    await asyncio.sleep(self.pause)
            elif not follow:
                return
            else:
                await asyncio.sleep(0.005)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ViewStore]:
    if request.param == "sqlite":
        view_store: ViewStore = SQLiteViewStore(tmp_path / "views.sqlite")
        yield view_store
        view_store.close()
        return
    namespace = f"t{uuid4().hex[:12]}"
    view_store = PostgresViewStore(POSTGRES_URL, namespace)
    try:
        yield view_store
    finally:
        view_store.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            tables = connection.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (f"{namespace}_%",)
            ).fetchall()
            for (table,) in tables:
                connection.execute(f"DROP TABLE {table}")


async def test_replaying_a_story_gives_the_rows_of_folding_it(store: ViewStore) -> None:
    events = story_events(seed=1)
    generation = store.prepare()
    progress = await ProjectionRunner(store, ListFeed(events), catch_up_events=50).run(
        generation, follow=False
    )
    assert progress.position == events[-1][0]
    assert store.position(generation) == events[-1][0]
    assert stored_rows(store, generation) == folded(events)
    assert progress.applied == sum(1 for e in events if e[1] != "SignalReceived")


@pytest.mark.parametrize("window_rows", [5, 60_000], ids=["whole-commits", "closed-rows-only"])
async def test_a_crash_resumes_from_the_committed_position_and_applies_nothing_twice(
    store: ViewStore, window_rows: int
) -> None:
    events = story_events(seed=2)
    generation = store.prepare()
    crashing = ListFeed(events, fail_after=len(events) // 7 // 2)
    with pytest.raises(ConnectionError):
        await ProjectionRunner(store, crashing, catch_up_events=30, window_rows=window_rows).run(
            generation, follow=False
        )
    committed = store.position(generation)
    stored = stored_rows(store, generation)
    if window_rows == 5:  # rows waiting to be written filled the window: whole commits
        assert committed is not None and committed < events[-1][0]
    else:  # only closed issues' rows were written, ahead of the position
        assert committed is None and stored
    # Every issue the committed position covers is stored as it was then or later; every
    # stored row is its issue as it was at some moment (the fold of its first events).
    covered = folded([e for e in events if committed is not None and e[0] <= committed])
    assert covered.keys() <= stored.keys()
    for issue, body in stored.items():
        row = msgspec.json.decode(body, type=IssueRow)
        assert row.version >= msgspec.json.decode(covered.get(issue, body), type=IssueRow).version
        assert (
            body
            == folded([e for e in events if issue_of(e) == issue and e[2] <= row.version])[issue]
        )

    resumed = ListFeed(events)
    await ProjectionRunner(store, resumed, catch_up_events=30).run(generation, follow=False)
    assert resumed.asked == [committed]
    assert stored_rows(store, generation) == folded(events)


async def test_a_commit_that_fails_changes_neither_rows_nor_position(store: ViewStore) -> None:
    events = story_events(seed=3, steps=60)
    generation = store.prepare()
    half = len(events) // 2
    await ProjectionRunner(store, ListFeed(events[:half])).run(generation, follow=False)
    before = (store.position(generation), stored_rows(store, generation))
    good = store.records(msgspec.json.decode(b, type=IssueRow) for b in folded(events).values())
    broken = [*good[:-1], (good[-1][0], None, *good[-1][2:])]  # a row without its buurt
    with pytest.raises(Exception):  # noqa: B017 - whichever error the database raises
        store.commit(generation, broken, events[-1][0])
    assert (store.position(generation), stored_rows(store, generation)) == before
    with pytest.raises(ViewStoreError, match="refusing to go back"):
        store.commit(generation, [], events[0][0])


async def test_the_picture_answers_with_filters(store: ViewStore) -> None:
    events = story_events(seed=4)
    generation = store.prepare()
    await ProjectionRunner(store, ListFeed(events)).run(generation, follow=False)
    rows = [msgspec.json.decode(b, type=IssueRow) for b in folded(events).values()]
    buurt = rows[0].buurt

    def ids(found: list[IssueRow]) -> set[str]:
        return {r.id for r in found}

    assert ids(store.issues(buurt)) == {r.id for r in rows if r.is_open}
    assert ids(store.issues(buurt, "all")) == {r.id for r in rows}
    assert ids(store.issues(buurt, "resolved")) == {r.id for r in rows if r.status == "resolved"}
    assert ids(store.issues(buurt, "all", owner="woonzorg")) == {
        r.id for r in rows if r.owner == "woonzorg"
    }
    assert ids(store.issues(buurt, "all", category="eenzaamheid")) == {
        r.id for r in rows if r.category == "eenzaamheid"
    }
    assert store.issues("BU0363ZZ99", "all") == []
    assert store.issue(rows[0].id) == rows[0]
    assert store.issue("BU0363FF03.issue.nope") is None


async def test_a_rebuild_switches_over_while_the_live_runner_keeps_following(
    store: ViewStore,
) -> None:
    events = story_events(seed=5)
    first, rest = events[: len(events) // 2], events[len(events) // 2 :]
    live_feed = ListFeed(list(first))
    generation = store.prepare()
    stop = asyncio.Event()
    runner = ProjectionRunner(store, live_feed)
    following = asyncio.create_task(runner.follow(stop))
    try:
        while store.position(generation) != first[-1][0]:  # noqa: ASYNC110 - polling the db
            await asyncio.sleep(0.01)
        answered = 0
        buurt = _buurt(first)

        async def keep_asking() -> None:
            nonlocal answered
            while not stop.is_set():
                assert store.issues(buurt, "all")  # never empty, never half
                answered += 1
                await asyncio.sleep(0.001)

        asking = asyncio.create_task(keep_asking())
        rebuild_feed = ListFeed(list(first), batch=3)
        done = await rebuild(store, rebuild_feed)
        assert (done.generation, done.replaced) == (generation + 1, generation)
        assert store.current_generation() == done.generation
        # New events after the switch reach the new generation through the live runner.
        live_feed.events.extend(rest)
        deadline = asyncio.get_running_loop().time() + 10
        while store.live_position() != events[-1][0]:
            assert asyncio.get_running_loop().time() < deadline, "the live runner did not follow"
            await asyncio.sleep(0.01)
        assert stored_rows(store, done.generation) == folded(events)
        assert answered > 0
    finally:
        stop.set()
        await following
        await asking


def _buurt(events: list[Recorded]) -> str:
    for _, topic, _, body in events:
        event = issue_event(topic, body)
        if event is not None:
            return event.buurt
    raise AssertionError("no issue events")


async def test_an_unfinished_rebuild_is_dropped_and_the_live_views_stay(store: ViewStore) -> None:
    events = story_events(seed=6, steps=80)
    generation = store.prepare()
    await ProjectionRunner(store, ListFeed(events)).run(generation, follow=False)
    before = stored_rows(store, generation)
    with pytest.raises(ConnectionError):
        await rebuild(store, ListFeed(events, fail_after=2))
    assert store.current_generation() == generation
    assert stored_rows(store, generation) == before
    leftover = store.new_generation()
    assert store.abandon_unfinished() == [leftover]


async def test_a_switch_keeps_the_retired_generation_until_the_next(store: ViewStore) -> None:
    events = story_events(seed=7, steps=40)
    first = store.prepare()
    await ProjectionRunner(store, ListFeed(events)).run(first, follow=False)
    second = (await rebuild(store, ListFeed(events))).generation
    # A reader that looked up generation `first` just before the switch still finds it.
    assert stored_rows(store, first) == stored_rows(store, second) == folded(events)
    assert not store.commit(first, [], events[-1][0] + 1)  # but nobody writes it any more
    third = (await rebuild(store, ListFeed(events))).generation
    assert store.current_generation() == third
    with pytest.raises(Exception):  # noqa: B017 - the database's "no such table"
        stored_rows(store, first)
    assert stored_rows(store, second) == folded(events)


def watch_commits(store: ViewStore, seen: Callable[[list[Record], int | None], object]) -> None:
    """`store.commit` shows `seen` each commit's records (its later pieces too) and position."""
    commit = store.commit

    def watched(
        generation: int,
        records: Sequence[Record],
        position: int | None,
        more: Iterable[Sequence[Record]] = (),
    ) -> bool:
        records = [*records, *(record for later in more for record in later)]
        seen(records, position)
        return commit(generation, records, position)

    store.commit = watched  # type: ignore[method-assign]


async def test_a_replay_writes_most_rows_once(store: ViewStore) -> None:
    events = story_events(seed=8)
    generation = store.prepare()
    written: list[tuple[list[str], list[str], int | None]] = []  # ids, statuses, position
    watch_commits(
        store,
        lambda records, position: written.append(
            ([r[0] for r in records], [r[2] for r in records], position)
        ),
    )
    await ProjectionRunner(store, ListFeed(events), catch_up_events=60).run(
        generation, follow=False
    )
    # Per window of 60 positions the closed issues' rows, ahead of the position; the open
    # ones with the position at the end of the backlog.
    *closing, last = written
    assert closing
    for _ids, statuses, position in closing:
        assert position is None
        assert set(statuses) <= {"resolved", "merged"}
    assert last[2] == events[-1][0]
    # Each issue's row written once, but for issues reopened after being written.
    issues = {issue_of(e) for e in events} - {None}
    reopened = sum(1 for e in events if e[1].startswith("IssueReopened"))
    assert len(issues) <= sum(len(ids) for ids, _, _ in written) <= len(issues) + reopened
    assert stored_rows(store, generation) == folded(events)


def reopened_long_after_story() -> list[Recorded]:
    """An issue resolved, 150 others opened, then the first reopened and claimed."""
    clock = Clock()
    app = coordination(POPO, clock)
    others = [("signal", "stadgenoot", f"plek-{n}", 1) for n in range(150)]
    play(
        app,
        clock,
        [
            ("signal", "woonzorg", "portiek-0", 0),
            ("claim", "woonzorg", 0, ""),
            ("resolve", "woonzorg", 0, ""),
            *others,
            ("reopen", "woonzorg", 150, ""),
            ("claim", "stadgenoot", 150, ""),
            ("signal", "stadgenoot", "plek-x", 1),
        ],
    )
    return stored_events(app)


async def test_rows_written_and_dropped_are_read_back_beside_the_fold(store: ViewStore) -> None:
    events = reopened_long_after_story()
    generation = store.prepare()
    loop_thread = threading.current_thread()
    read_back: list[tuple[threading.Thread, list[str]]] = []
    load = store.load

    def recording(
        generation: int, ids: Iterable[str], *, folded: bool = False
    ) -> dict[str, IssueRow]:
        ids = list(ids)
        read_back.append((threading.current_thread(), ids))
        return load(generation, ids, folded=folded)

    store.load = recording  # type: ignore[method-assign]
    await ProjectionRunner(store, ListFeed(events), catch_up_events=20).run(
        generation, follow=False
    )
    # Closed issues' rows leave memory once written; this one was reopened after that.
    [reopened] = {issue_id(e) for e in events if e[1].startswith("IssueReopened")}
    assert {i for _, ids in read_back for i in ids} == {reopened}
    # In a worker thread, while the event loop folds on; each row read once.
    assert all(thread is not loop_thread for thread, _ in read_back)
    ids = [i for _, ids in read_back for i in ids]
    assert len(ids) == len(set(ids))
    assert stored_rows(store, generation) == folded(events)


async def test_following_writes_the_rows_of_each_commit_with_its_position(
    store: ViewStore,
) -> None:
    events = story_events(seed=8)
    generation = store.prepare()
    commits: list[Committed] = []
    runner = ProjectionRunner(
        store, ListFeed(events, pause=0.001), on_commit=commits.append, max_delay=0.0
    )
    stop = asyncio.Event()
    following = asyncio.create_task(runner.follow(stop))
    try:
        async with asyncio.timeout(10):
            while store.position(generation) != events[-1][0]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await following
    # Live, each commit holds exactly the issues changed since the one before, each once.
    assert len(commits) > 3
    before = None
    for done in commits:
        assert done.position is not None
        changed = {
            issue_id(e)
            for e in events
            if (before is None or e[0] > before)
            and e[0] <= done.position
            and e[1] != "SignalReceived"
        }
        assert sorted(r.id for r in done.rows) == sorted(changed)
        before = done.position
    assert stored_rows(store, generation) == folded(events)


async def test_a_window_holds_at_most_window_rows(store: ViewStore) -> None:
    events = story_events(seed=9)
    generation = store.prepare()
    commits: list[Committed] = []
    runner = ProjectionRunner(store, ListFeed(events), on_commit=commits.append, window_rows=4)
    await runner.run(generation, follow=False)
    assert max(len(c.rows) for c in commits) <= 4 + 7  # the batch that filled it: 7 events
    assert stored_rows(store, generation) == folded(events)


async def test_following_commits_a_new_event_at_once(store: ViewStore) -> None:
    events = story_events(seed=10, steps=60)
    half = len(events) // 2
    feed = ListFeed(events[:half])
    generation = store.prepare()
    stop = asyncio.Event()
    # No cadence: with nothing more waiting, a commit goes at once, not after `max_delay`.
    runner = ProjectionRunner(store, feed, max_delay=60)
    following = asyncio.create_task(runner.follow(stop))
    try:
        for upto in (half, len(events)):
            feed.events[:] = events[:upto]
            async with asyncio.timeout(5):
                while store.position(generation) != events[upto - 1][0]:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        assert stored_rows(store, generation) == folded(events)
    finally:
        stop.set()
        await following


class SlowCommits(SQLiteViewStore):
    """A view store whose commits take a while (a busy database)."""

    def commit(
        self,
        generation: int,
        records: Sequence[Record],
        position: int | None,
        more: Iterable[Sequence[Record]] = (),
    ) -> bool:
        time.sleep(0.3)
        return super().commit(generation, records, position, more)


async def test_waiting_for_a_slow_commit_costs_no_cpu(tmp_path: Path) -> None:
    events = story_events(seed=12)
    store = SlowCommits(tmp_path / "views.sqlite")
    generation = store.prepare()
    stop = asyncio.Event()
    # Events keep arriving (a batch every 20 ms) while each commit is written.
    runner = ProjectionRunner(store, ListFeed(events, pause=0.02), max_delay=0.01)
    following = asyncio.create_task(runner.follow(stop))
    try:
        started, started_cpu = time.monotonic(), time.thread_time()
        async with asyncio.timeout(20):
            while store.position(generation) != events[-1][0]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        waited, busy = time.monotonic() - started, time.thread_time() - started_cpu
        # Several commits of 0.3 s each were waited for: the loop slept meanwhile. (A loop
        # that woke again and again would be busy about as long as it waited.)
        assert waited > 0.6
        assert busy < 0.35 * waited, f"the loop was busy {busy:.2f} s of {waited:.2f} s"
        assert stored_rows(store, generation) == folded(events)
    finally:
        stop.set()
        await following
        store.close()


async def test_a_replay_leaves_the_collector_as_it_found_it(store: ViewStore) -> None:
    events = story_events(seed=11, steps=80)
    generation = store.prepare()
    gc.unfreeze()  # whatever earlier tests left frozen
    await ProjectionRunner(store, ListFeed(events)).run(generation, follow=False)
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    with pytest.raises(ConnectionError):
        await ProjectionRunner(store, ListFeed(events, fail_after=1)).run(
            store.new_generation(), follow=False
        )
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    # What someone else froze (`buurtbeeld up`: what start-up made) stays frozen.
    gc.freeze()
    try:
        await ProjectionRunner(store, ListFeed(events)).run(store.new_generation(), follow=False)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def issue_id(event: Recorded) -> str:
    decoded = issue_event(event[1], event[3])
    assert decoded is not None
    return decoded.issue_id


def issue_of(event: Recorded) -> str | None:
    """The issue an event is of; None for a receipt."""
    decoded = issue_event(event[1], event[3])
    return None if decoded is None else decoded.issue_id


async def test_sqlite_checkpoints_run_beside_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "views.sqlite"
    store = SQLiteViewStore(path)
    generation = store.prepare()
    events = story_events(seed=13)
    rows = [msgspec.json.decode(b, type=IssueRow) for b in folded(events).values()]
    before = path.stat().st_size
    store.commit(generation, store.records(rows), events[-1][0])
    # The writer does not copy its WAL back into the file itself; the checkpoint
    # thread does, soon after the commit.
    async with asyncio.timeout(5):
        while path.stat().st_size <= before:  # noqa: ASYNC110 - the file is what we watch
            await asyncio.sleep(0.02)
    assert stored_rows(store, generation) == folded(events)
    store.close()
    thread = store._checkpoints._thread
    assert thread is not None and not thread.is_alive()


def test_a_new_sqlite_view_database_has_large_pages(tmp_path: Path) -> None:
    assert page_size_after_a_story(tmp_path / "views.sqlite") == PAGE_BYTES


def test_an_existing_sqlite_view_database_keeps_its_pages(tmp_path: Path) -> None:
    path = tmp_path / "views.sqlite"
    with sqlite3.connect(path) as old:  # made before, with SQLite's default pages
        old.execute("PRAGMA page_size=4096")
        old.execute("PRAGMA journal_mode=WAL")
        old.execute("CREATE TABLE kept (x)")
    old.close()
    assert page_size_after_a_story(path) == 4096


def page_size_after_a_story(path: Path) -> int:
    """The page size of the view file at `path` once a story's rows are stored (and read
    back as they were)."""
    store = SQLiteViewStore(path)
    generation = store.prepare()
    events = story_events(seed=17)
    rows = [msgspec.json.decode(b, type=IssueRow) for b in folded(events).values()]
    store.commit(generation, store.records(rows), events[-1][0])
    with store._reading() as cur:
        size = int(cur.execute("PRAGMA page_size").fetchone()[0])
    assert stored_rows(store, generation) == folded(events)
    store.close()
    return size


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_postgresql_keys_compare_bytewise_and_large_bodies_go_in_lz4(
    store: PostgresViewStore,
) -> None:
    # (SQLite compares TEXT bytewise already, and does not compress.)
    generation = store.prepare()
    events = story_events(seed=19)
    rows = [msgspec.json.decode(b, type=IssueRow) for b in folded(events).values()]
    large = msgspec.structs.replace(rows[0], id=f"{rows[0].id}-large", summary="x" * 20_000)
    store.commit(generation, store.records([*rows, large]), events[-1][0])
    table = store._issues(generation)
    with store._reading() as cur:
        cur.execute(
            "SELECT attname, collname FROM pg_attribute JOIN pg_collation"
            " ON pg_collation.oid = attcollation"
            " WHERE attrelid = %s::regclass AND attname IN ('id', 'buurt')",
            (table,),
        )
        assert dict(cur.fetchall()) == {"id": "C", "buurt": "C"}
        cur.execute(f"SELECT pg_column_compression(body) FROM {table} WHERE id = %s", (large.id,))
        compression = cur.fetchone()[0]
    assert compression == ("lz4" if store._has_lz4() else "pglz")
    assert stored_rows(store, generation) == folded(events) | {large.id: msgspec.json.encode(large)}


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_postgresql_upserts_each_row_of_a_commit_written_in_pieces_once(
    store: PostgresViewStore,
) -> None:
    # A commit written as it is encoded (`_write_as_encoded`) upserts piece after
    # piece in one transaction, each copied through the staging table first.
    generation = store.prepare()
    rows = story_rows_at_least(2_400, seed=29)
    pieces = [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
    assert all(len(piece) >= 1_000 for piece in pieces)  # each copied (`_COPY_FROM`)
    table = store._issues(generation)
    with store._transaction() as cur:
        for piece in pieces:
            store._upsert(cur, table, store.records(piece))
        cur.execute(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            (table,),
        )
        assert cur.fetchone() == (len(rows), 0)
    assert stored_rows(store, generation) == {row.id: msgspec.json.encode(row) for row in rows}


async def test_a_large_commit_goes_in_parts_side_by_side_then_its_position(
    store: ViewStore,
) -> None:
    events = story_events(seed=21)
    generation = store.prepare()
    store.parallel_writes = 2  # PostgreSQL's; on SQLite the parts take turns
    written: list[tuple[int, int | None]] = []  # rows, position
    watch_commits(store, lambda records, position: written.append((len(records), position)))
    runner = ProjectionRunner(store, ListFeed(events), catch_up_events=10**6, commit_part=3)
    await runner.run(generation, follow=False)
    # One commit of every row at the end of the backlog: two parts without the position
    # (written side by side), then the position alone.
    issues = len(folded(events))
    assert issues >= 6
    assert sorted(written[:2]) == sorted([(issues - issues // 2, None), (issues // 2, None)])
    assert written[2:] == [(0, events[-1][0])]
    assert stored_rows(store, generation) == folded(events)
    assert store.position(generation) == events[-1][0]


async def test_a_part_that_fails_leaves_the_position_once_every_part_has_ended(
    store: ViewStore,
) -> None:
    events = story_events(seed=22)
    generation = store.prepare()
    store.parallel_writes = 2
    commit = store.commit
    parts: list[str] = []
    lock = threading.Lock()

    def one_slow_one_failing(
        generation: int,
        records: Sequence[Record],
        position: int | None,
        more: Iterable[Sequence[Record]] = (),
    ) -> bool:
        with lock:
            first = not parts
            parts.append("started")
        if not first:
            raise RuntimeError("the database refused a part")
        time.sleep(0.3)
        landed = commit(generation, records, position, more)
        parts.append("slow part landed")
        return landed

    store.commit = one_slow_one_failing  # type: ignore[method-assign]
    runner = ProjectionRunner(store, ListFeed(events), catch_up_events=10**6, commit_part=3)
    with pytest.raises(RuntimeError, match="refused a part"):
        await runner.run(generation, follow=False)
    # The error came out only after the other part had landed (a retry must not race it),
    # and the position was not written: the rows that did land are ahead of it.
    assert parts[-1] == "slow part landed"
    assert store.position(generation) is None
    store.commit = commit  # type: ignore[method-assign]
    await ProjectionRunner(store, ListFeed(events)).run(generation, follow=False)
    assert stored_rows(store, generation) == folded(events)


async def test_a_commit_of_many_rows_upserts_them_as_one_of_a_few_does(store: ViewStore) -> None:
    # PostgreSQL copies a commit of 1,000 rows or more before upserting (`_COPY_FROM`).
    generation = store.prepare()
    many = story_rows_at_least(1_200, seed=23)
    store.commit(generation, store.records(many), 1)
    changed = [msgspec.structs.replace(row, status="resolved") for row in many[::2]]
    store.commit(generation, store.records(changed[:5]), 2)  # a few, and many, rewritten
    store.commit(generation, store.records(changed[5:]), 3)
    expected = {row.id: msgspec.json.encode(row) for row in many}
    expected |= {row.id: msgspec.json.encode(row) for row in changed}
    assert stored_rows(store, generation) == expected
    final = {row.id: row for row in many} | {row.id: row for row in changed}
    buurt = many[0].buurt
    assert {row.id for row in store.issues(buurt)} == {
        i for i, row in final.items() if row.buurt == buurt and row.is_open
    }


async def test_a_commit_is_written_while_the_rest_of_it_is_encoded(
    store: ViewStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = story_events(seed=23)
    generation = store.prepare()
    store.parallel_writes = 1  # one writer: the pieces go to it as they are encoded
    monkeypatch.setattr(runner_module, "ENCODED_PIECE", 4)
    happened: list[str] = []
    records, commit = store.records, store.commit

    def slowly_encoded(rows: Iterable[IssueRow]) -> list[Record]:
        time.sleep(0.02)  # lets go of the GIL: the writer may run meanwhile
        encoded = records(rows)
        happened.append("encoded")
        return encoded

    def writing(
        generation: int,
        first: Sequence[Record],
        position: int | None,
        more: Iterable[Sequence[Record]] = (),
    ) -> bool:
        happened.append("writing")
        return commit(generation, first, position, more)

    monkeypatch.setattr(store, "records", slowly_encoded)
    monkeypatch.setattr(store, "commit", writing)
    await ProjectionRunner(store, ListFeed(events), catch_up_events=10**6).run(
        generation, follow=False
    )
    # One commit at the end of the backlog, its writer at work before the last piece
    # was encoded; every row in it.
    assert happened.count("writing") == 1 and happened.count("encoded") > 2
    assert happened.index("writing") < len(happened) - 1
    assert stored_rows(store, generation) == folded(events)
    assert store.position(generation) == events[-1][0]


async def test_a_commit_whose_encoding_fails_writes_none_of_it(
    store: ViewStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = story_events(seed=24)
    generation = store.prepare()
    store.parallel_writes = 1
    monkeypatch.setattr(runner_module, "ENCODED_PIECE", 4)
    records = store.records
    calls = 0

    def failing_later(rows: Iterable[IssueRow]) -> list[Record]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ValueError("a row that cannot be encoded")
        return records(rows)

    monkeypatch.setattr(store, "records", failing_later)
    with pytest.raises(ValueError, match="cannot be encoded"):
        await ProjectionRunner(store, ListFeed(events), catch_up_events=10**6).run(
            generation, follow=False
        )
    # The pieces encoded before went in the same transaction: undone with it.
    assert stored_rows(store, generation) == {}
    assert store.position(generation) is None
