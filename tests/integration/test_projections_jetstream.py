"""Projections fed by the real EVENTS stream: replay, live following, as-of, history.

The coordination writes to JetStream as in `buurtbeeld up`; the projection
reads back through a nats-py ordered consumer on the issue subjects only.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import msgspec
import nats
import pytest

from projections.changes import PictureChanges
from projections.feeds import JetStreamFeed
from projections.picture import IssueRow
from projections.queries import PictureQueries
from projections.runner import ProjectionRunner
from projections.store import SQLiteViewStore
from projections.visibility import Visibility
from services.coordination.application import Coordination
from services.embedded_nats import EmbeddedNats
from services.registries import DEFAULT_CATEGORIES
from tests.integration.jetstream_support import fresh_store_env
from tests.integration.test_projections import folded, stored_rows
from tests.unit.test_coordination import BUURT, ORGANISATIONS, Clock, coordination, signal
from tests.unit.test_picture import play, random_story, stored_events

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def env(shared_nats: EmbeddedNats) -> dict[str, str]:
    return fresh_store_env(shared_nats.url)


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[tuple[Coordination, Clock]]:
    clock = Clock()
    application = coordination(env, clock)
    yield application, clock
    application.close()


def last_issue_event(app: Coordination) -> int:
    """The position of the last issue event (receipts are no part of the picture)."""
    return max(
        position for position, topic, _, _ in stored_events(app) if topic != "SignalReceived"
    )


def feed_for(nc: nats.NATS, env: dict[str, str], buurt: str | None = None) -> JetStreamFeed:
    return JetStreamFeed(
        nc, stream=env["NATS_STREAM"], prefix=env["NATS_SUBJECT_PREFIX"], buurt=buurt
    )


async def test_a_replay_of_the_stream_gives_the_rows_of_folding_it(
    app: tuple[Coordination, Clock], env: dict[str, str], tmp_path: Path
) -> None:
    coordination_app, clock = app
    await asyncio.to_thread(play, coordination_app, clock, random_story(random.Random(11), 150))
    events = stored_events(coordination_app)
    store = SQLiteViewStore(tmp_path / "views.sqlite")
    nc = await nats.connect(env["NATS_URL"])
    try:
        generation = store.prepare()
        progress = await ProjectionRunner(store, feed_for(nc, env)).run(generation, follow=False)
        issue_events = [e for e in events if e[1] != "SignalReceived"]
        assert progress.read == len(issue_events)  # the server filtered the receipts out
        assert progress.position == issue_events[-1][0]
        assert stored_rows(store, generation) == folded(events)
    finally:
        await nc.close()
        store.close()


async def test_the_live_runner_shows_new_signals_and_commands(
    app: tuple[Coordination, Clock], env: dict[str, str], tmp_path: Path
) -> None:
    coordination_app, _ = app
    store = SQLiteViewStore(tmp_path / "views.sqlite")
    changes = PictureChanges()
    nc = await nats.connect(env["NATS_URL"])
    stop = asyncio.Event()
    store.prepare()
    runner = ProjectionRunner(store, feed_for(nc, env), on_commit=changes.publish)
    following = asyncio.create_task(runner.follow(stop))
    try:
        [outcome] = await asyncio.to_thread(
            coordination_app.receive, [("woonzorg", signal("wz-live"))]
        )
        assert outcome.issue_id is not None
        assert await changes.wait_for(last_issue_event(coordination_app), timeout=5)
        row = store.issue(outcome.issue_id)
        assert row is not None and (row.status, row.signal_count) == ("unowned", 1)

        from events.contract import Claim

        await asyncio.to_thread(
            coordination_app.handle, "wijkteam-nieuw-west", "claim", Claim(issue_id=row.id)
        )
        assert await changes.wait_for(last_issue_event(coordination_app), timeout=5)
        claimed = store.issue(row.id)
        assert claimed is not None and claimed.owner == "wijkteam-nieuw-west"
    finally:
        stop.set()
        await following
        await nc.close()
        store.close()


async def test_as_of_a_moment_replays_the_buurt_up_to_then(
    app: tuple[Coordination, Clock], env: dict[str, str], tmp_path: Path
) -> None:
    coordination_app, clock = app
    await asyncio.to_thread(play, coordination_app, clock, random_story(random.Random(12), 80))
    moment: datetime = clock.at
    before = stored_events(coordination_app)
    await asyncio.to_thread(play, coordination_app, clock, random_story(random.Random(13), 80))
    everything = stored_events(coordination_app)
    assert len(everything) > len(before)

    store = SQLiteViewStore(tmp_path / "views.sqlite")
    store.prepare()
    nc = await nats.connect(env["NATS_URL"])
    try:
        queries = PictureQueries(
            store,
            Visibility(DEFAULT_CATEGORIES),
            buurt_feed=lambda buurt: feed_for(nc, env, buurt),
            issue_events=lambda issue_id: [],
            unseal=coordination_app.personal_data.unseal,
            clock=clock,
        )
        then = await queries.replay(BUURT, moment)
        assert {r.id: msgspec.json.encode(r) for r in then} == folded(before)
        now = await queries.replay(BUURT, clock.at)
        assert {r.id: msgspec.json.encode(r) for r in now} == folded(everything)
        # And as a reader asks for it: only what the reader may see, in the picture's order.
        woonzorg = ORGANISATIONS.get("woonzorg")
        assert woonzorg is not None
        answer = await queries.buurt_issues(woonzorg, BUURT, status="all", as_of=moment)
        assert answer.as_of == moment and answer.position is None
        rows = {
            r.id: r
            for r in (msgspec.json.decode(b, type=IssueRow) for b in folded(before).values())
        }
        assert {v.id for v in answer.issues} == set(rows)
        assert all(v.status == rows[v.id].status for v in answer.issues)
    finally:
        await nc.close()
        store.close()
