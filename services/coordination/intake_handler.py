"""Intake on NATS: batches from the INTAKE stream into `Coordination.receive`, exactly once.

Each batch of messages (in stream order) is read, handed to the application in a
worker thread, and saved with its INTAKE position as tracking in the same atomic
write; only then are rejections sent and the messages acknowledged. A message
at or below the tracked position was processed before (a redelivery after a
crash or a lost ack): it is acknowledged and nothing else. A failed save is
negatively acknowledged with a growing delay, so JetStream delivers it again.

The tracked position must mean "everything up to here is done", also when
batches are retried out of order or a crashed run left messages unacknowledged.
So it is the last sequence delivered only when the consumer has nothing
outstanding but this batch; otherwise the consumer's ack floor. Asking the
consumer is a round trip a batch; it is saved while each batch takes up, in
delivery order, right where the acknowledged ones end (`_acked_below`: all
deliveries before it acknowledged, first deliveries only): then everything up
to the batch's last sequence is done, and nothing needs asking.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import structlog
from eventsourcing.persistence import OperationalError, Tracking
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from events.contract import Rejection, Signal
from events.contract.codec import encode
from events.jetstream.wire import encode_pub, write_raw
from services.coordination.application import Coordination
from services.coordination.intake_reading import Unreadable, organisation_of, read_signal
from services.coordination.outcomes import Outcome, OutcomeKind
from services.coordination.refusals import Conflict

log = structlog.get_logger(__name__)

INTAKE_STREAM = "INTAKE"
INTAKE_SUBJECT = "intake.*.signals"
INTAKE_CONSUMER = "coordination"
# The tracking records' application name: the upstream whose positions they are.
TRACKING_NAME = "INTAKE"
# Redelivery delays after failed saves: doubling from the first, up to the last.
FIRST_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 30.0
ACK_TIMEOUT = 5.0

# Sends `body` on the core NATS `subject`.
Publish = Callable[[str, bytes], Awaitable[None]]
# Calls a blocking function with its arguments and awaits its result.
Call = Callable[..., Awaitable[Any]]


async def in_worker_thread(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in a worker thread: the event loop it is awaited on goes on."""
    return await anyio.to_thread.run_sync(function, *args)


async def right_here(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` on the loop's own thread, for a loop that has nothing else to do."""
    return function(*args)


@dataclass(frozen=True)
class Delivery:
    """One message of a batch."""

    sequence: int
    subject: str
    organisation: str
    body: bytes


class IntakeConsumer:
    """Processes the batches the INTAKE pull consumer delivers. One batch at a time.

    `call` runs the application's blocking work (by default in a worker thread).
    With `confirm_acks_later`, a batch's acks are sent and their confirmation is
    awaited only when it matters (before the consumer is asked about what is
    outstanding, and in `close`), not before the next batch: a round trip less a
    batch. What the position means does not depend on acks (it is stored with
    what was done); a lost ack is a redelivery, skipped as tracked.
    """

    def __init__(
        self,
        coordination: Coordination,
        publish: Publish,
        call: Call = in_worker_thread,
        *,
        confirm_acks_later: bool = False,
    ) -> None:
        self.coordination = coordination
        self.publish = publish
        self.call = call
        self.confirm_acks_later = confirm_acks_later
        self._acking: asyncio.Task[bool] | None = None  # the last batch's acks, unconfirmed
        self.tracked: int | None = None  # the recorded position, read on the first batch
        self.failures = 0  # failed saves in a row
        # A consumer sequence below which every delivery is acknowledged, when known.
        self._acked_below: int | None = None

    async def receive(self, messages: Sequence[Msg], js: JetStreamContext) -> None:
        """Process `messages`; ack them, or nak them all for a later retry. Never raises.

        Its log line says when (wall clock) the batch came and was stored, so a
        signal's way through intake can be timed against the streams' own times.
        """
        started, received_at = time.monotonic(), time.time()
        clashes = self.coordination.clashes
        try:
            if self.tracked is None:
                recorded = await self.call(
                    self.coordination.recorder.max_tracking_id, TRACKING_NAME
                )
                self.tracked = recorded or 0
            deliveries = _deliveries(messages)
            fresh = [d for d in deliveries if d.sequence > self.tracked]
            # Even a batch all done before (a redelivery) may let the position move
            # on: after a crash between saving a batch and acking it, the batches
            # after it could not (it was outstanding), and it may be the last.
            tracking, acked_end = (
                await self._tracking(
                    fresh or deliveries, len(deliveries), js, self._in_delivery_order(messages)
                )
                if deliveries
                else (None, None)
            )
            reads = [(d, read_signal(d.body)) for d in fresh]
            readable = [(d, read) for d, read in reads if isinstance(read, Signal)]
            outcomes: list[Outcome] = await self.call(
                self.coordination.receive, [(d.organisation, s) for d, s in readable], tracking
            )
        except (Conflict, OperationalError) as e:
            self._acked_below = None
            await self._retry_later(messages, error=f"{type(e).__name__}: {e}")
            return
        except Exception as e:
            self._acked_below = None
            log.exception("intake.failed", **_batch_context(messages))
            await self._retry_later(messages, error=f"{type(e).__name__}: {e}")
            return
        stored_at = time.time()
        self.failures = 0
        if tracking is not None:
            self.tracked = max(self.tracked, tracking.notification_id)
        rejections = [(d, r.signal_ref, r.reasons) for d, r in reads if isinstance(r, Unreadable)]
        rejections += [
            (d, o.signal_ref, o.reasons)
            for (d, _), o in zip(readable, outcomes, strict=True)
            if not o.accepted
        ]
        for delivery, signal_ref, reasons in sorted(rejections, key=lambda r: r[0].sequence):
            await self._reject(delivery, signal_ref, reasons)
        if self.confirm_acks_later:
            await self._confirm_acks()  # the batch before: long done, as a rule
            self._acking = asyncio.ensure_future(_ack(messages))
            self._acked_below = acked_end
        else:
            acked = await _ack(messages)
            self._acked_below = acked_end if acked else None
        log.info(
            "intake.batch",
            **_batch_context(messages),
            messages=len(messages),
            skipped=len(deliveries) - len(fresh),
            unreadable=len(fresh) - len(readable),
            **_counts(outcomes),
            tracked=tracking.notification_id if tracking else None,
            clashes=self.coordination.clashes - clashes,
            seconds=round(time.monotonic() - started, 4),
            received_at=round(received_at, 4),
            stored_at=round(stored_at, 4),
        )

    def _in_delivery_order(self, messages: Sequence[Msg]) -> tuple[int, int] | None:
        """(first, end) of the batch's consumer sequences when they are `first`, `first + 1`,
        ... `end - 1`, each a first delivery; None otherwise."""
        if not messages:
            return None
        numbers = [delivery_numbers(msg) for msg in messages]
        if any(times != 1 for times, _ in numbers):
            return None
        sequences = sorted(sequence for _, sequence in numbers)
        first, end = sequences[0], sequences[-1] + 1
        return (first, end) if end - first == len(sequences) else None

    async def _tracking(
        self,
        fresh: list[Delivery],
        delivered: int,
        js: JetStreamContext,
        in_order: tuple[int, int] | None,
    ) -> tuple[Tracking | None, int | None]:
        """The position to record with this batch (below it, everything is done), and
        the consumer sequence below which all is acknowledged once this batch is."""
        assert self.tracked is not None
        if in_order is not None and in_order[0] == self._acked_below:
            # All deliveries before this batch are acknowledged, and the first delivery
            # of each sequence came in stream order: all up to its last one are done.
            position = fresh[-1].sequence
            tracking = Tracking(TRACKING_NAME, position) if position > self.tracked else None
            return tracking, in_order[1]
        await self._confirm_acks()  # the consumer's state must have them
        consumer = await js.consumer_info(INTAKE_STREAM, INTAKE_CONSUMER)
        floor = (consumer.ack_floor.consumer_seq if consumer.ack_floor else 0) or 0
        # Known from here on when the batch follows right on what is acknowledged.
        acked_end = in_order[1] if in_order is not None and in_order[0] == floor + 1 else None
        if consumer.num_ack_pending == delivered:
            # Nothing outstanding but this batch: all delivered before it was acked.
            last_delivered = consumer.delivered.stream_seq if consumer.delivered else 0
            position = max(fresh[-1].sequence, last_delivered)
        else:  # a retry waits, or a crashed run's batch: only the ack floor is done
            position = consumer.ack_floor.stream_seq if consumer.ack_floor else 0
        tracking = Tracking(TRACKING_NAME, position) if position > self.tracked else None
        return tracking, acked_end

    async def _confirm_acks(self) -> None:
        """Wait for the server to confirm the acks of the last batch, if not yet."""
        acking, self._acking = self._acking, None
        if acking is not None:
            await acking  # failures are logged by `_ack`

    async def close(self) -> None:
        """Before the connection goes: the last acks confirmed."""
        await self._confirm_acks()

    async def _reject(
        self, delivery: Delivery, signal_ref: str | None, reasons: Sequence[str]
    ) -> None:
        log.info(
            "intake.rejected",
            subject=delivery.subject,
            stream_sequence=delivery.sequence,
            organisation=delivery.organisation,
            signal_ref=signal_ref,
            reasons=list(reasons),
        )
        body = encode(Rejection(signal_ref=signal_ref, reasons=list(reasons)))
        try:
            await self.publish(f"rejected.{delivery.organisation}", body)
        except Exception as e:  # core NATS: at most once anyway
            log.warning("intake.rejection_not_sent", error=repr(e), subject=delivery.subject)

    async def _retry_later(self, messages: Sequence[Msg], *, error: str) -> None:
        self.failures += 1
        delay = min(FIRST_RETRY_DELAY * 2 ** (self.failures - 1), MAX_RETRY_DELAY)
        log.warning(
            "intake.retry",
            **_batch_context(messages),
            error=error,
            failures=self.failures,
            delay_seconds=delay,
        )
        try:
            for msg in messages:
                await msg.nak(delay=delay)
        except Exception as e:  # not acked: JetStream redelivers after its ack wait
            log.warning("intake.nak_failed", error=repr(e))


def stream_sequence(msg: Msg) -> int:
    """The message's INTAKE stream sequence, from its ack subject.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>`
    read directly; nats-py's `metadata` (also timestamps and more) for other forms.
    """
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[5])
    return msg.metadata.sequence.stream


def delivery_numbers(msg: Msg) -> tuple[int, int]:
    """(times delivered, consumer sequence) of a message, from its ack subject."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[4]), int(tokens[6])
    metadata = msg.metadata
    return metadata.num_delivered, metadata.sequence.consumer


def _deliveries(messages: Sequence[Msg]) -> list[Delivery]:
    """The batch in stream order, each message once (a redelivery may come twice)."""
    by_sequence: dict[int, Delivery] = {}
    for msg in messages:
        sequence = stream_sequence(msg)
        by_sequence[sequence] = Delivery(
            sequence=sequence,
            subject=msg.subject,
            organisation=organisation_of(msg.subject),
            body=msg.data,
        )
    return [by_sequence[sequence] for sequence in sorted(by_sequence)]


async def _ack(messages: Sequence[Msg]) -> bool:
    """Ack all; wait for the last one, so the consumer's state has them all. Whether it did."""
    if not messages:
        return True
    *body, last = messages
    try:
        if body:
            # One write for the lot: `msg.ack()` is a whole `nc.publish` each.
            client = body[0]._client
            if client is None or not all(msg.reply for msg in body):
                raise ValueError("a message without a client or reply subject")
            await write_raw(client, [encode_pub(msg.reply) for msg in body])
            for msg in body:
                msg._ackd = True
        await last.ack_sync(timeout=ACK_TIMEOUT)
    except Exception as e:  # redelivered later, and then skipped as tracked
        log.warning("intake.ack_failed", error=repr(e))
        return False
    return True


def _batch_context(messages: Sequence[Msg]) -> dict[str, object]:
    """Subject, stream sequences and organisation of a batch (`*` when they differ)."""
    subjects = {msg.subject for msg in messages}
    sequences = [stream_sequence(msg) for msg in messages]
    organisations = {organisation_of(subject) for subject in subjects}
    return {
        "subject": subjects.pop() if len(subjects) == 1 else INTAKE_SUBJECT,
        "stream_sequence": f"{min(sequences)}-{max(sequences)}" if sequences else None,
        "organisation": organisations.pop() if len(organisations) == 1 else "*",
    }


def _counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts = dict.fromkeys((kind.value for kind in OutcomeKind), 0)
    for outcome in outcomes:
        counts[outcome.kind.value] += 1
    return counts
