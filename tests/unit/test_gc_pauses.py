"""Long garbage collections are noted while they happen and logged afterwards."""

from __future__ import annotations

import asyncio
import gc
import time

from structlog.testing import capture_logs

from services.gc_pauses import LONG_PAUSE, _PauseTimer, long_collections_logged


def test_a_long_collection_is_logged_a_short_one_is_not() -> None:
    timer = _PauseTimer()

    # A collection as long as a long pause, then a short one
    timer("start", {"generation": 2})
    time.sleep(LONG_PAUSE * 1.5)
    timer("stop", {"generation": 2, "collected": 7})
    timer("start", {"generation": 0})
    timer("stop", {"generation": 0, "collected": 0})

    # Only the long one is logged, when reported (never from inside the collector)
    with capture_logs() as logs:
        timer.report()
        timer.report()  # nothing twice
    assert [(e["event"], e["generation"], e["collected"]) for e in logs] == [("gc.pause", 2, 7)]
    assert logs[0]["seconds"] >= LONG_PAUSE


def test_the_collector_callback_is_there_only_inside_the_block() -> None:
    before = list(gc.callbacks)

    async def inside() -> int:
        async with long_collections_logged():
            return len(gc.callbacks)

    assert asyncio.run(inside()) == len(before) + 1
    assert gc.callbacks == before
