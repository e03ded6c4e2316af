"""The open-issue index kept between runs (`services.coordination.index_snapshot`).

A coordination started from a snapshot reads only the log after it, and holds
exactly the open issues a rebuild from the whole log holds; a snapshot of
another log, of another format, or one that cannot be read is ignored (the
index is rebuilt from the start). On an event store in a SQLite file, so that
the log outlives each run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest

from services.coordination.application import Coordination
from services.coordination.held_issue import HeldIssue
from services.coordination.index_snapshot import FORMAT, IndexSnapshot, IndexSnapshots
from services.registries.categories import DEFAULT_CATEGORIES
from services.settings import Settings
from tests.unit.test_coordination import BUURTEN, ORGANISATIONS, Clock
from tests.unit.test_picture import play, random_story


def store(data: Path) -> dict[str, str]:
    """The event store `buurtbeeld up` configures with `eventsourcing.sqlite` in `data`."""
    data.mkdir(exist_ok=True)
    settings = Settings.from_environ(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "BUURTBEELD_DATA": str(data)},
        stderr_is_terminal=False,
    )
    return settings.eventsourcing_env("nats://127.0.0.1:4222")  # NATS only carries INTAKE


@contextmanager
def running(
    env: dict[str, str], clock: Clock, snapshots: IndexSnapshots | None
) -> Iterator[Coordination]:
    app = Coordination(
        env,
        organisations=ORGANISATIONS,
        categories=DEFAULT_CATEGORIES,
        buurten=BUURTEN,
        now=clock,
        index_snapshots=snapshots,
    )
    try:
        yield app
    finally:
        app.close()


def played(
    env: dict[str, str], clock: Clock, snapshots: IndexSnapshots, seed: int
) -> IndexSnapshot:
    """A random story played on the log of `env`, and the snapshot kept after it."""
    with running(env, clock, snapshots) as app:
        play(app, clock, random_story(random.Random(seed), 150))
        kept = app.save_snapshot()
    assert kept is not None and kept.issues
    return kept


def held(app: Coordination) -> list[HeldIssue]:
    return sorted(app.open_issues.held())


def rebuilt(env: dict[str, str], clock: Clock) -> list[HeldIssue]:
    """The open issues of a start without a snapshot: from the whole log."""
    with running(env, clock, None) as app:
        return held(app)


def test_a_start_from_a_snapshot_reads_only_the_tail_and_holds_what_a_rebuild_holds(
    tmp_path: Path,
) -> None:
    env, clock = store(tmp_path), Clock()
    snapshots = IndexSnapshots(tmp_path / "open-issues.snapshot")
    with running(env, clock, snapshots) as first:
        play(first, clock, random_story(random.Random(21), 250))
        kept = first.save_snapshot()
        assert kept is not None and kept.issues
        # More happens after the snapshot: reopened, closed and new issues among it.
        play(first, clock, random_story(random.Random(22), 250))
        end = first.recorder.max_notification_id()
    assert end is not None and end > kept.position

    with running(env, clock, snapshots) as second:
        assert second.restored_from == kept.position
        assert second.rebuilt_from_log == end - kept.position
        assert held(second) == rebuilt(env, clock)
        # It goes on from there as from a rebuild (caught up with its commands' saves).
        play(second, clock, random_story(random.Random(23), 100))
        again = second.save_snapshot()
        assert again is not None and sorted(again.issues) == rebuilt(env, clock)


def test_a_snapshot_of_another_log_is_ignored(tmp_path: Path) -> None:
    clock = Clock()
    snapshots = IndexSnapshots(tmp_path / "open-issues.snapshot")
    played(store(tmp_path / "elsewhere"), clock, snapshots, seed=31)
    env = store(tmp_path)
    with running(env, clock, None) as here:
        play(here, clock, random_story(random.Random(32), 150))

    with running(env, clock, snapshots) as started:
        assert started.restored_from is None
        assert held(started) == rebuilt(env, clock)


@pytest.mark.parametrize("written", [b"", b"not a snapshot", "other format"])
def test_a_snapshot_that_cannot_be_used_is_ignored(tmp_path: Path, written: bytes | str) -> None:
    env, clock = store(tmp_path), Clock()
    snapshots = IndexSnapshots(tmp_path / "open-issues.snapshot")
    kept = played(env, clock, snapshots, seed=41)
    if isinstance(written, bytes):
        snapshots.path.write_bytes(written)
    else:  # a snapshot of a layout this version does not know
        older = IndexSnapshot(FORMAT + 1, kept.position, kept.at_position, kept.issues)
        snapshots.path.write_bytes(msgspec.msgpack.encode(older))
    assert snapshots.load() is None

    with running(env, clock, snapshots) as started:
        assert started.restored_from is None
        assert held(started) == rebuilt(env, clock)


def test_a_snapshot_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    env, clock = store(tmp_path), Clock()
    snapshots = IndexSnapshots(tmp_path / "open-issues.snapshot")
    first = played(env, clock, snapshots, seed=51)
    second = played(env, clock, snapshots, seed=52)
    assert second.position > first.position
    assert snapshots.load() == second
    assert [p.name for p in tmp_path.iterdir() if "snapshot" in p.name] == ["open-issues.snapshot"]


def test_a_snapshot_holds_the_issues_a_failed_save_left_out_of_the_index(tmp_path: Path) -> None:
    env, clock = store(tmp_path), Clock()
    snapshots = IndexSnapshots(tmp_path / "open-issues.snapshot")
    with running(env, clock, snapshots) as app:
        play(app, clock, random_story(random.Random(61), 150))
        before = app.save_snapshot()  # the index caught up with the commands' saves
        assert before is not None and before.issues
        # A save that failed leaves its issue out until it is read again (`_mark_stale`).
        app._mark_stale([before.issues[0].id])
        kept = app.save_snapshot()
    assert kept is not None
    assert sorted(kept.issues) == sorted(before.issues) == rebuilt(env, clock)
