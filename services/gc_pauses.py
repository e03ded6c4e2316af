"""Garbage collector pauses: logged (`long_collections_logged`), and fewer objects to walk.

A collection of the oldest generation walks every object the process holds
and stops every thread meanwhile; with a large heap it is a pause of tens of
milliseconds that all requests and signals in flight wait for. Each one
longer than `LONG_PAUSE` is logged (`gc.pause`, with its generation, length
and how many objects it collected; within a second, never from inside the
collector), so a latency tail can be held against it.
What start-up made (modules, registries, the rebuilt open issues) stays for
the life of the process: `freeze_start_up` takes it out of the collector's
walks (it is still freed as usual when nothing refers to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import structlog

log = structlog.get_logger(__name__)

LONG_PAUSE = 0.010  # seconds
REPORT_EVERY = 1.0  # seconds

# (generation, seconds, objects collected, ended at): what a collection reports.
Pause = tuple[int, float, int, float]


class _PauseTimer:
    """A `gc.callbacks` entry: notes long collections (logging inside one is unsafe)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.pauses: deque[Pause] = deque(maxlen=1000)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        seconds = time.perf_counter() - self.started
        if seconds >= LONG_PAUSE:
            generation, collected = info.get("generation", -1), info.get("collected", 0)
            self.pauses.append((generation, seconds, collected, time.time()))

    def report(self) -> None:
        while self.pauses:
            generation, seconds, collected, ended_at = self.pauses.popleft()
            log.info(
                "gc.pause",
                generation=generation,
                seconds=round(seconds, 4),
                collected=collected,
                ended_at=round(ended_at, 4),
            )


@contextlib.asynccontextmanager
async def long_collections_logged() -> AsyncIterator[None]:
    """Log every collection that takes `LONG_PAUSE` or longer, while inside the block."""
    timer = _PauseTimer()

    async def report() -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY)
            timer.report()

    gc.callbacks.append(timer)
    reporting = asyncio.create_task(report(), name="gc-pauses")
    try:
        yield
    finally:
        gc.callbacks.remove(timer)
        reporting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporting
        timer.report()


def freeze_start_up() -> None:
    """Collect once, then leave every object alive now out of future collections."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info(
        "gc.frozen",
        objects=gc.get_freeze_count(),
        seconds=round(time.perf_counter() - started, 4),
    )
