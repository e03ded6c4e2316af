"""The INTAKE consumer: a durable pull consumer, fetched in batches, one batch at a time.

A plain nats-py loop (on intake's own connection and thread, `intake_thread`)
rather than FastStream's batch subscriber: FastStream 0.7.8 keeps fetching
until its batch is full or its time
is up, and with nats-py 2.16 the last, nearly expired fetch can raise a bare
`TimeoutError` that FastStream does not catch; its task then dies with the
batch it had gathered, which JetStream only delivers again after the ack wait.
Here a fetch returns what is there (up to a batch) within a short wait, and a
stop lets the batch in hand finish.
"""

from __future__ import annotations

import asyncio
import gc
from contextlib import suppress

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy

from services.coordination.application import MAX_SIGNALS_PER_SAVE
from services.coordination.intake_fetch import BatchFetcher
from services.coordination.intake_handler import (
    INTAKE_CONSUMER,
    INTAKE_STREAM,
    INTAKE_SUBJECT,
    IntakeConsumer,
)

log = structlog.get_logger(__name__)

# One batch is one atomic save; a short wait for more keeps a lone signal quick.
INTAKE_BATCH_SIZE = 4 * MAX_SIGNALS_PER_SAVE
INTAKE_BATCH_WAIT = 0.1
# How long a batch may take before JetStream delivers it again.
INTAKE_ACK_WAIT = 60.0
# Room for the batch in hand and retries waiting for their delay.
INTAKE_MAX_ACK_PENDING = 4096
# After NATS trouble (reconnecting, the consumer gone), the pause before trying again.
PULL_RETRY_DELAY = 1.0
# Allocations between young collections (CPython's default is 700): see `collect_less_often`.
YOUNG_COLLECTION_THRESHOLD = 10_000


def collect_less_often() -> None:
    """Let the garbage collector look at the heap less often while intake runs.

    Intake creates and drops hundreds of small objects a signal. With CPython's
    defaults, a young collection every 700 allocations and a look at the whole
    heap (the imported modules, the open issues, the event store's caches)
    every hundred of those, a quarter of the service's time went to collecting
    (measured with `bench.ingest`). Almost all of it is freed by reference
    counting anyway; cycles are still collected, less often. Process-wide, once.
    """
    young, middle, old = gc.get_threshold()
    if young and young < YOUNG_COLLECTION_THRESHOLD:
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, max(middle, 10), max(old, 10))


def intake_consumer_config() -> ConsumerConfig:
    """The durable pull consumer that feeds intake: everything, in order, acked one by one."""
    return ConsumerConfig(
        name=INTAKE_CONSUMER,
        durable_name=INTAKE_CONSUMER,
        description="Coordination intake; its position is tracked in the event store.",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=INTAKE_ACK_WAIT,
        max_deliver=-1,  # never give up on a signal
        max_ack_pending=INTAKE_MAX_ACK_PENDING,
        filter_subject=INTAKE_SUBJECT,
        replay_policy=ReplayPolicy.INSTANT,
    )


async def ensure_intake_consumer(js: JetStreamContext, timeout: float) -> None:
    """Create the consumer, or bring an existing one to `intake_consumer_config()`."""
    await js.add_consumer(INTAKE_STREAM, intake_consumer_config(), timeout=timeout)


class IntakePuller:
    """Fetches batches from the INTAKE consumer and hands them to `intake`, until stopped."""

    def __init__(self, js: JetStreamContext, intake: IntakeConsumer, timeout: float) -> None:
        self.js = js
        self.intake = intake
        self.timeout = timeout
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        collect_less_often()
        self._task = asyncio.create_task(self._pull(), name="intake-pull")

    def stop_soon(self) -> None:
        """Fetch no further batch (on the loop's thread; `stop` waits for the one in hand)."""
        self._stopping.set()

    async def stop(self, grace: float) -> None:
        """Finish the batch in hand (at most `grace` seconds), then stop fetching."""
        if self._task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            log.warning("intake.stop_timeout", grace_seconds=grace)
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def _pull(self) -> None:
        fetcher: BatchFetcher | None = None
        try:
            while not self._stopping.is_set():
                try:
                    if fetcher is None:
                        await ensure_intake_consumer(self.js, self.timeout)
                        fetcher = BatchFetcher(self.js._nc, INTAKE_STREAM, INTAKE_CONSUMER)
                        await fetcher.start()
                    messages = await fetcher.fetch(INTAKE_BATCH_SIZE, INTAKE_BATCH_WAIT)
                except TimeoutError:  # nothing came
                    continue
                except Exception as e:
                    log.warning("intake.pull_failed", error=f"{type(e).__name__}: {e}")
                    if fetcher is not None:
                        await fetcher.stop()
                        fetcher = None
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), PULL_RETRY_DELAY)
                    continue
                await self.intake.receive(messages, self.js)
                # A batch may be done without waiting for anything: let a stop asked
                # for meanwhile (`stop_soon`, from another thread) be seen first.
                await asyncio.sleep(0)
        finally:
            await self.intake.close()
            if fetcher is not None:
                await fetcher.stop()
