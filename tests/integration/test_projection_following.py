"""The live runner on a thread of its own (`projections.following`): its feed opened on
its loop, its commits announced on the caller's loop in order, and a clean stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from projections.feeds import Feed
from projections.following import FollowingThread
from projections.runner import Committed
from projections.store import SQLiteViewStore
from tests.integration.test_projections import ListFeed, folded, stored_rows, story_events

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_runner_follows_on_its_own_thread_and_announces_on_the_callers_loop(
    tmp_path: Path,
) -> None:
    events = story_events(seed=14, steps=120)
    half = len(events) // 2
    feed = ListFeed(events[:half])
    store = SQLiteViewStore(tmp_path / "views.sqlite")
    generation = store.prepare()
    opened_on: list[str] = []
    announced: list[tuple[Committed, str]] = []
    here = asyncio.get_running_loop()

    @asynccontextmanager
    async def open_feed() -> AsyncIterator[Feed]:
        opened_on.append(threading.current_thread().name)
        yield feed

    def announce(committed: Committed) -> None:
        assert asyncio.get_running_loop() is here
        announced.append((committed, threading.current_thread().name))

    following = FollowingThread(store, open_feed, announce)
    await following.start()
    try:
        for upto in (half, len(events)):
            feed.events[:] = events[:upto]
            async with asyncio.timeout(10):
                while not announced or announced[-1][0].position != events[upto - 1][0]:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
    finally:
        await following.stop(10)
    try:
        assert opened_on == ["projection"]
        assert {name for _, name in announced} == {threading.current_thread().name}
        positions = [c.position for c, _ in announced]
        assert positions == sorted(positions)
        assert stored_rows(store, generation) == folded(events)
        assert "projection" not in {t.name for t in threading.enumerate()}  # it ended
    finally:
        store.close()


async def test_a_feed_that_cannot_be_opened_fails_the_start(tmp_path: Path) -> None:
    store = SQLiteViewStore(tmp_path / "views.sqlite")
    store.prepare()

    @asynccontextmanager
    async def open_feed() -> AsyncIterator[Feed]:
        raise ConnectionError("no NATS")
        yield  # pragma: no cover

    try:
        with pytest.raises(ConnectionError, match="no NATS"):
            await FollowingThread(store, open_feed, lambda _: None).start()
    finally:
        store.close()
