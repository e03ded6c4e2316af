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
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress

import structlog

from projections.feeds import Feed
from projections.runner import Committed, ProjectionRunner
from projections.store import ViewStore

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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._abandoned = threading.Event()  # stopped before its loop was there

    async def start(self) -> None:
        """Open the feed and start following; raise if the feed cannot be opened."""
        caller = asyncio.get_running_loop()
        ready: asyncio.Future[None] = caller.create_future()

        def settle(error: BaseException | None) -> None:
            if ready.done():
                return
            if error is None:
                ready.set_result(None)
            else:
                ready.set_exception(error)

        def run() -> None:
            try:
                asyncio.run(self._run(caller, settle))
            except BaseException as e:
                log.error("projection.failed", error=repr(e))
                with suppress(RuntimeError):  # the caller's loop is gone
                    caller.call_soon_threadsafe(settle, e)

        self._thread = threading.Thread(target=run, name="projection", daemon=True)
        self._thread.start()
        try:
            await ready
        except BaseException:
            await self.stop(0.0)
            raise

    async def stop(self, timeout: float) -> None:
        """Let the commit under way land (at most `timeout` seconds), then close the feed."""
        thread = self._thread
        if thread is None:
            return
        self._abandoned.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with suppress(RuntimeError):  # its loop already ended
                loop.call_soon_threadsafe(stopping.set)
        await asyncio.to_thread(thread.join, timeout)
        if thread.is_alive():
            log.warning("projection.thread_still_running", timeout_seconds=timeout)

    async def _run(
        self, caller: asyncio.AbstractEventLoop, settle: Callable[[BaseException | None], None]
    ) -> None:
        self._stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._abandoned.is_set():
            return

        def announce(committed: Committed) -> None:
            with suppress(RuntimeError):  # the caller's loop is gone: nobody listens
                caller.call_soon_threadsafe(self.announce, committed)

        async with self.open_feed() as feed:
            runner = ProjectionRunner(self.store, feed, on_commit=announce)
            caller.call_soon_threadsafe(settle, None)
            await runner.follow(self._stopping)
