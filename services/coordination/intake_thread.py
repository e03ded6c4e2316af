"""Intake on its own thread: its own event loop and NATS connection, `IntakeThread`.

The service's main event loop also serves HTTP, the projection and commands.
Under load (dashboards and clients polling the picture), each turn of that loop
takes many milliseconds, and intake waited for one at every step of a batch
(the fetch, the consumer's state, the hand-over to the worker thread, the
ack): most of a signal's time to the picture was spent there (measured with
`bench.freshness`). On a loop of its own, intake waits only for itself, and
does the application's work on that thread too (no hand-over to a worker).
Rejections are still sent by the main loop's FastStream publisher.

Threads that wake up (a reply came) wait for the interpreter lock while another
thread computes, by default up to 5 ms each time: `switch_threads_sooner`
makes that 1 ms, process-wide, once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from contextlib import suppress
from typing import Any

import nats
import structlog

from services.concurrency import LoopThread
from services.coordination.application import Coordination
from services.coordination.intake_handler import IntakeConsumer, Publish, right_here
from services.coordination.intake_pull import IntakePuller, ensure_intake_consumer

log = structlog.get_logger(__name__)

# Seconds a thread may hold the interpreter lock while another waits (CPython: 0.005).
SWITCH_INTERVAL = 0.001


def switch_threads_sooner() -> None:
    """Let a waiting thread have the interpreter lock after `SWITCH_INTERVAL` at most."""
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)


class IntakeThread:
    """Runs an `IntakePuller` in a thread of its own, from `start()` until `stop()`."""

    def __init__(
        self,
        servers: Sequence[str],
        coordination: Coordination,
        publish: Callable[[str, bytes], Coroutine[Any, Any, None]],
        timeout: float,
    ) -> None:
        self.servers = list(servers)
        self.coordination = coordination
        self.timeout = timeout
        self._publish = publish
        self._grace = 0.0
        self._puller: IntakePuller | None = None
        self._thread = LoopThread("intake", self._run)

    async def start(self) -> None:
        """Connect, make sure of the consumer and start pulling; raise if that fails."""
        switch_threads_sooner()
        await self._thread.start()

    async def stop(self, grace: float) -> None:
        """Let the batch in hand finish (at most `grace` seconds), then close the connection."""
        self._grace = grace

        def before_another_batch() -> None:
            if self._puller is not None:
                self._puller.stop_soon()

        if not await self._thread.stop(grace + self.timeout + 5, before=before_another_batch):
            log.warning("intake.thread_still_running", grace_seconds=grace)

    async def _run(self, started: Callable[[], None], stopping: asyncio.Event) -> None:
        caller = self._thread.caller
        assert caller is not None  # set by `start`, before this runs
        nc = await nats.connect(
            servers=self.servers,
            name="buurtbeeld-intake",
            connect_timeout=max(1, round(self.timeout)),
            max_reconnect_attempts=-1,
        )
        try:
            js = nc.jetstream(timeout=self.timeout)
            await ensure_intake_consumer(js, self.timeout)

            async def publish(subject: str, body: bytes) -> None:
                sent: Future[None] = asyncio.run_coroutine_threadsafe(
                    self._publish(subject, body), caller
                )
                await asyncio.wrap_future(sent)

            rejections: Publish = publish
            # Nothing else runs on this loop: the application's work is done on it.
            consumer = IntakeConsumer(
                self.coordination, rejections, call=right_here, confirm_acks_later=True
            )
            puller = self._puller = IntakePuller(js, consumer, self.timeout)
            puller.start()
            started()
            await stopping.wait()
            await puller.stop(self._grace)
        finally:
            with suppress(Exception):
                await nc.drain()
