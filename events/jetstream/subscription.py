"""`subscribe()`: an ordered consumer on the events subjects.

The ordered consumer (ephemeral, flow-controlled, gap-detecting, recreated by
nats-py after a reconnect) delivers into the subscription's pending queue; the
iterating thread takes messages from there in batches, so one hop to the loop
thread serves many notifications, and flow control holds the server back while
the reader is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import nats.errors
from eventsourcing.persistence import Notification, Subscription
from nats.js.api import ConsumerConfig, DeliverPolicy

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

    from events.jetstream.recorders import JetStreamApplicationRecorder

# How long one wait for new events lasts before checking whether we were stopped.
_POLL = 0.25
_BATCH = 1000
# nats-py recreates an ordered consumer after missing two heartbeats; with the
# default 5 s a subscription stalled 10-20 s after a server restart.
_HEARTBEAT = 1.0


class JetStreamSubscription(Subscription["JetStreamApplicationRecorder"]):
    """Notifications after `gt`, then new ones as they are stored; blocks between."""

    def __init__(
        self,
        recorder: JetStreamApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._client = recorder.client
        self._wanted = set(topics)
        self._buffer: deque[Notification] = deque()
        self._sub: JetStreamContext.PushSubscription = self._client.run(self._start(gt))

    async def _start(self, gt: int | None) -> JetStreamContext.PushSubscription:
        config = (
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=gt + 1)
            if gt
            else ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        js = self._client.nc.jetstream(timeout=self._client.timeout)
        return await js.subscribe(
            self._recorder.scheme.events_filter,
            stream=self._recorder.stream,
            ordered_consumer=True,
            idle_heartbeat=_HEARTBEAT,
            config=config,
        )

    def __next__(self) -> Notification:
        while True:
            if self._has_been_stopped:
                raise StopIteration
            if self._buffer:
                return self._buffer.popleft()
            for msg in self._client.run(self._take()):
                notification = self._recorder.notification_of(msg)
                if not self._wanted or notification.topic in self._wanted:
                    self._buffer.append(notification)

    async def _take(self) -> list[Msg]:
        """Wait up to `_POLL` for one message, then take what else is already here."""
        try:
            first = await self._sub.next_msg(timeout=_POLL)
        except nats.errors.TimeoutError:
            return []
        taken = [first]
        # nats-py has no public "take what is buffered"; this mirrors next_msg().
        queue: asyncio.Queue[Msg] = self._sub._pending_queue
        while len(taken) < _BATCH and not queue.empty():
            msg = queue.get_nowait()
            self._sub._pending_size -= len(msg.data)
            queue.task_done()
            taken.append(msg)
        return taken

    def stop(self) -> None:
        if not self._has_been_stopped:
            super().stop()
            with contextlib.suppress(Exception):
                self._client.run(self._sub.unsubscribe())
