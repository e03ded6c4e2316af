"""Doing what a partner system does: publish a signal exactly as CONTRACT.md says.

Used by `buurtbeeld signal`, `buurtbeeld seed-demo`, the end-to-end tests and
`bench.ingest` (which publishes many signals at once: `publish_signals`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client as NATS

from events.contract import Signal
from events.contract.codec import encode
from events.jetstream.wire import (
    MAX_ATOMIC_BATCH,
    OutgoingMessage,
    encode_atomic_batch,
    write_raw,
)

INTAKE_STREAM = "INTAKE"
# JetStream's answers to an atomic batch it stored none of, that the same
# signals published one by one are not refused for.
ATOMIC_BATCH_DUPLICATE = 10201  # "atomic publish batch contains duplicate message id"
ATOMIC_BATCH_DISABLED = 10174  # "atomic publish is disabled" (stream without allow_atomic)


def intake_subject(organisation: str) -> str:
    return f"intake.{organisation}.signals"


def message_id(organisation: str, signal_ref: str) -> str:
    """`Nats-Msg-Id`: JetStream drops a repeat of the same id within its window."""
    return f"{organisation}/{signal_ref}"


@dataclass(frozen=True)
class Published:
    stream: str
    sequence: int
    duplicate: bool


async def publish_signal(
    nc: NATS, organisation: str, signal: Signal, timeout: float = 5
) -> Published:
    """Publish `signal` for `organisation` on INTAKE and return where it was stored."""
    ack = await nc.jetstream(timeout=timeout).publish(
        intake_subject(organisation),
        encode(signal),
        headers={"Nats-Msg-Id": message_id(organisation, signal.signal_ref)},
        stream=INTAKE_STREAM,
    )
    return Published(ack.stream, ack.seq, bool(ack.duplicate))


class PublishRefusedError(RuntimeError):
    """JetStream refused a publish on INTAKE (its error, as it gave it)."""


async def publish_signals(
    nc: NATS, signals: Sequence[tuple[str, Signal]], timeout: float = 5
) -> list[Published]:
    """Publish `(organisation, signal)` pairs on INTAKE, in order; where each was stored.

    Each signal is the message `publish_signal` sends (its subject, body and
    `Nats-Msg-Id`), but they go as one JetStream atomic batch (ADR-50): one
    write and one acknowledgement, one disk sync on a server that syncs every
    write, instead of one each. At most `MAX_ATOMIC_BATCH` (1000) signals.

    JetStream refuses a whole atomic batch when any message in it is a repeat
    of a `Nats-Msg-Id` it still remembers (or repeats one inside the batch), and
    when the stream does not allow atomic batches; nothing of it is stored.
    Then every signal is published on its own, as `publish_signal` does: the new
    ones are stored, the repeats are reported `duplicate`, exactly as if the
    batch had never been tried.
    """
    if len(signals) > MAX_ATOMIC_BATCH:
        raise ValueError(
            f"{len(signals)} signals in one batch; JetStream allows at most {MAX_ATOMIC_BATCH}"
        )
    if len(signals) <= 1:
        return [await publish_signal(nc, org, signal, timeout) for org, signal in signals]
    messages = [
        OutgoingMessage(
            intake_subject(org), {"Nats-Msg-Id": message_id(org, signal.signal_ref)}, encode(signal)
        )
        for org, signal in signals
    ]
    if max(len(message.data) for message in messages) > nc.max_payload:
        raise nats.errors.MaxPayloadError  # the server would close the connection over it
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox, max_msgs=1)
    try:
        await write_raw(nc, encode_atomic_batch(messages, {}, inbox))
        reply = await subscription.next_msg(timeout)
    finally:
        await subscription.unsubscribe()
    if reply.headers and reply.headers.get("Status") == "503":
        raise nats.errors.NoRespondersError  # no INTAKE stream on the server
    ack = json.loads(reply.data)
    error = ack.get("error")
    if error and error.get("err_code") in (ATOMIC_BATCH_DUPLICATE, ATOMIC_BATCH_DISABLED):
        return [await publish_signal(nc, org, signal, timeout) for org, signal in signals]
    if error or "seq" not in ack:
        raise PublishRefusedError(f"INTAKE refused {len(signals)} signals: {ack}")
    first = int(ack["seq"]) - len(signals) + 1
    return [Published(ack["stream"], first + n, False) for n in range(len(signals))]
