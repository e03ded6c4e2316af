"""Two asyncio helpers the composition root needs to start and stop things safely."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any, TypeVar

T = TypeVar("T")


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
