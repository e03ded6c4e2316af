"""asyncio helpers to start and stop things safely: in the composition root, and for the
components that run on a thread and event loop of their own (`LoopThread`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")
# `main(started, stopping)` of a `LoopThread`: call `started()` once running, return
# once `stopping` is set.
LoopMain = Callable[[Callable[[], None], asyncio.Event], Coroutine[Any, Any, None]]


async def unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, T]) -> T | None:
    """The result of `work`, or None when `stop` was set first (then `work` is cancelled)."""
    working = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if working.done():
        return working.result()
    working.cancel()
    with suppress(asyncio.CancelledError):
        await working
    return None


async def in_thread_to_the_end(func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` in a worker thread; when cancelled, still wait for it to return.

    A thread cannot be interrupted: if the caller gave up early, what the
    call started (a nats-server process) would escape the cleanup.
    """
    call = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        await asyncio.wait({call})
        raise


class LoopThread:
    """`main` on a thread of its own, with its own event loop, from `start()` until `stop()`.

    `main(started, stopping)` runs on that loop: it calls `started()` once what it
    runs is going (then `start` returns; what it raises before, `start` raises),
    and returns once `stopping` is set. A stop that comes while it starts wins:
    `main` then never runs.
    """

    def __init__(self, name: str, main: LoopMain) -> None:
        self.name = name
        self._main = main
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._abandoned = threading.Event()  # stopped before its loop was there
        # The loop `start` was called on: where `main` hands results back to.
        self.caller: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        caller = self.caller = asyncio.get_running_loop()
        ready: asyncio.Future[None] = caller.create_future()

        def settle(error: BaseException | None) -> None:
            if ready.done():
                return
            if error is None:
                ready.set_result(None)
            else:
                ready.set_exception(error)

        def started() -> None:
            caller.call_soon_threadsafe(settle, None)

        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            if not self._abandoned.is_set():
                await self._main(started, self._stopping)

        def thread() -> None:
            try:
                asyncio.run(run())
            except BaseException as e:  # before it started: the caller raises it
                log.error("thread.failed", thread=self.name, error=repr(e))
                with suppress(RuntimeError):  # the caller's loop is gone
                    caller.call_soon_threadsafe(settle, e)

        self._thread = threading.Thread(target=thread, name=self.name, daemon=True)
        self._thread.start()
        try:
            await ready
        except BaseException:  # failed, or given up on: nothing may go on running
            await self.stop(0.0)
            raise

    def call_soon(self, callback: Callable[[], None]) -> None:
        """`callback()` on the thread's loop, if it still runs."""
        loop = self._loop
        if loop is not None:
            with suppress(RuntimeError):  # its loop already ended
                loop.call_soon_threadsafe(callback)

    async def stop(self, timeout: float, before: Callable[[], None] | None = None) -> bool:
        """Set `stopping` (after `before()`, on the thread's loop) and wait at most
        `timeout` seconds for the thread to end; whether it did."""
        thread = self._thread
        if thread is None:
            return True
        self._abandoned.set()
        stopping = self._stopping
        if stopping is not None:

            def stop_soon() -> None:
                if before is not None:
                    before()
                stopping.set()

            self.call_soon(stop_soon)
        await asyncio.to_thread(thread.join, timeout)
        return not thread.is_alive()
