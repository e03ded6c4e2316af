"""Doing what a partner system does: publish a signal exactly as CONTRACT.md says.

Used by `buurtbeeld signal`, `buurtbeeld seed-demo` and the end-to-end tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS

from events.contract import Signal
from events.contract.codec import encode

INTAKE_STREAM = "INTAKE"


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
