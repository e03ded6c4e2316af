"""Live changes of the picture: every commit of the runner, to whoever listens.

The dashboard's server-sent events and the freshness benchmark subscribe
here. A listener that falls behind loses the oldest changes (it is told, by a
`None`, to reload), it never holds the runner back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from projections.runner import Committed

QUEUE_LIMIT = 256


class PictureChanges:
    """Fan-out of `Committed` to subscribers, each with its own bounded queue."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Committed | None]] = set()
        self.position: int | None = None

    def publish(self, committed: Committed) -> None:
        self.position = committed.position
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                queue.put_nowait(None)
            else:
                queue.put_nowait(committed)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Committed | None]]:
        """A queue of the commits from now on; `None` in it means "some were dropped"."""
        queue: asyncio.Queue[Committed | None] = asyncio.Queue(QUEUE_LIMIT)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Until the picture reflects `position` (True), or `timeout` passes (False)."""
        if self.position is not None and self.position >= position:
            return True
        async with self.subscribe() as queue:
            try:
                async with asyncio.timeout(timeout):
                    while self.position is None or self.position < position:
                        await queue.get()
            except TimeoutError:
                return False
        return True
