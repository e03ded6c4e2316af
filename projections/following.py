"""The live runner on a thread of its own: its own event loop and feed, `FollowingThread`.

The service's main event loop also serves HTTP, the dashboard's live streams
and commands. Under load (clients polling the picture), each turn of that loop
takes milliseconds, and the runner waited for turns at every step of a batch
(the read, the fold, the commit's hand-over to its worker thread, its
announcement): a good part of a signal's time to the picture (measured with
`bench.freshness`). On a loop of its own it waits only for itself, as intake
does (`services.coordination.intake_thread`). Its feed is opened on that loop
(a NATS connection belongs to the loop it was made on); its commits are
announced on the caller's loop, in order, where the listeners are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress

import structlog

from projections.feeds import Feed
from projections.runner import Committed, ProjectionRunner
from projections.store import ViewStore
from services.concurrency import LoopThread

log = structlog.get_logger(__name__)

OpenFeed = Callable[[], AbstractAsyncContextManager[Feed]]


class FollowingThread:
    """`ProjectionRunner.follow` on a thread of its own, from `start()` until `stop()`."""

    def __init__(
        self,
        store: ViewStore,
        open_feed: OpenFeed,
        announce: Callable[[Committed], None],
    ) -> None:
        self.store = store
        self.open_feed = open_feed
        self.announce = announce
        self._thread = LoopThread("projection", self._run)

    async def start(self) -> None:
        """Open the feed and start following; raise if the feed cannot be opened."""
        await self._thread.start()

    async def stop(self, timeout: float) -> None:
        """Let the commit under way land (at most `timeout` seconds), then close the feed."""
        if not await self._thread.stop(timeout):
            log.warning("projection.thread_still_running", timeout_seconds=timeout)

    async def _run(self, started: Callable[[], None], stopping: asyncio.Event) -> None:
        caller = self._thread.caller
        assert caller is not None  # set by `start`, before this runs

        def announce(committed: Committed) -> None:
            with suppress(RuntimeError):  # the caller's loop is gone: nobody listens
                caller.call_soon_threadsafe(self.announce, committed)

        async with self.open_feed() as feed:
            runner = ProjectionRunner(self.store, feed, on_commit=announce)
            started()
            await runner.follow(stopping)
