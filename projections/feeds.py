"""Where projections read the event log from: batches of recorded issue events.

A `Recorded` is (position, topic, version, body): the notification id (on
JetStream the EVENTS stream sequence), the stored topic, the issue's version
and the contract JSON. A feed yields lists of them in log order, and says with
each batch how many events were still waiting behind it when it was read
(`pending`), so a replay knows when it has caught up.

- `JetStreamFeed`: an ephemeral push consumer on the issue subjects of the
  EVENTS stream (`events.*.issue.*`, or one buurt's `events.<buurt>.issue.*`),
  read in bulk (`projections.delivery`): the server skips receipts and tracking
  records, flow control holds it back while we are slow, and after a gap, a
  reconnect or a lost consumer it starts a new one from the last position read.
- `RecorderFeed`: any eventsourcing ApplicationRecorder (`eventsourcing.sqlite`,
  `eventsourcing.postgres`, popo), through its `select_notifications` and
  `subscribe`, in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread

from events.jetstream.recorders import SEQUENCE_HEADER
from events.jetstream.wire import direct_get_last
from projections.delivery import Deliveries

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder
    from nats.aio.client import Client as NATS

Recorded = tuple[int, str, int, bytes]
ISSUE_MARK = ".issue."
_BATCH = 2000
_BULK = 20000  # deliveries in one batch: enough to spread the per-batch costs
_HEARTBEAT = 1.0


@dataclass(frozen=True, slots=True)
class Batch:
    """Events in log order, and how many more were stored behind them when read."""

    events: list[Recorded]
    pending: int
    # The last position read, also when none of the events was an issue event.
    last: int | None


class Feed(Protocol):
    def read(self, after: int | None, *, follow: bool = True) -> AsyncIterator[Batch]:
        """Batches after position `after`; with `follow` False, stop once caught up."""
        ...


class JetStreamFeed:
    """Issue events from the EVENTS stream, through a push consumer read in bulk."""

    def __init__(
        self,
        nc: NATS,
        *,
        stream: str = "EVENTS",
        prefix: str = "events",
        buurt: str | None = None,
        poll: float = 0.25,
        timeout: float = 5.0,
    ) -> None:
        self.nc = nc
        self.stream = stream
        self.filter = f"{prefix}.{buurt or '*'}.issue.*"
        self.poll = poll
        self.timeout = timeout

    async def read(self, after: int | None, *, follow: bool = True) -> AsyncIterator[Batch]:
        if not follow and await self._nothing_after(None, after):
            return
        while True:
            start = (after or 0) + 1
            async with Deliveries(
                self.nc, self.stream, self.filter, start, _HEARTBEAT, self.timeout
            ) as deliveries:
                while True:
                    if not deliveries.ready and not deliveries.broken:
                        await deliveries.wait(self.poll)
                    events = deliveries.take(_BULK)
                    if events:
                        after = events[-1][0]
                        # Stored behind the last one taken: here still, and on the server.
                        pending = len(deliveries.ready) + deliveries.pending
                        yield Batch(events, pending, after)
                        if not follow and pending == 0:
                            return
                        continue
                    if deliveries.broken or deliveries.silent:
                        break  # a gap or a lost consumer: a new one from `after`
                    if not follow and await self._nothing_after(None, after):
                        return

    async def _nothing_after(self, _js: Any, after: int | None) -> bool:
        """Whether the stream holds no issue event after `after`."""
        last = await direct_get_last(self.nc, self.stream, self.filter, self.timeout)
        if last is None:
            return True
        return after is not None and after >= int((last.headers or {})[SEQUENCE_HEADER])


class RecorderFeed:
    """Issue events from any eventsourcing ApplicationRecorder, read in a worker thread."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        *,
        buurt: str | None = None,
        poll: float = 0.25,
    ) -> None:
        self.recorder = recorder
        self.prefix = f"{buurt}{ISSUE_MARK}" if buurt else None
        self.poll = poll

    def _wanted(self, originator_id: object) -> bool:
        text = str(originator_id)
        return text.startswith(self.prefix) if self.prefix else ISSUE_MARK in text

    async def read(self, after: int | None, *, follow: bool = True) -> AsyncIterator[Batch]:
        while True:
            batch = await anyio.to_thread.run_sync(self._select, after)
            if batch.last is not None:
                after = batch.last
                yield batch
            if batch.pending == 0:
                if not follow:
                    return
                if batch.last is None:
                    await asyncio.sleep(self.poll)

    def _select(self, after: int | None) -> Batch:
        start = (after or 0) + 1
        notifications = self.recorder.select_notifications(start, _BATCH + 1)
        more = len(notifications) > _BATCH
        notifications = notifications[:_BATCH]
        events = [
            (n.id, n.topic, n.originator_version, n.state)
            for n in notifications
            if self._wanted(n.originator_id)
        ]
        last = notifications[-1].id if notifications else None
        return Batch(events, 1 if more else 0, last)


FeedFactory = Callable[[str | None], Feed]
