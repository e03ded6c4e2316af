"""JetStream requests the store needs and nats-py does not offer: atomic batch
publish (ADR-50, nats-server >= 2.12) and batch direct get (ADR-31).

All are coroutines run on the client's loop thread.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import IntegrityError, OperationalError, ProgrammingError
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from events.jetstream.client import ReplyRouter

BATCH_ID = "Nats-Batch-Id"
BATCH_SEQUENCE = "Nats-Batch-Sequence"
BATCH_COMMIT = "Nats-Batch-Commit"
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
STATUS = "Status"
NUM_PENDING = "Nats-Num-Pending"

# The server's limit on messages in one atomic batch (ADR-50).
MAX_ATOMIC_BATCH = 1000
# JetStream error codes meaning "the expected last sequence did not match".
_WRONG_LAST_SEQUENCE = {10071, 10164}


@dataclass(frozen=True)
class OutgoingMessage:
    subject: str
    headers: dict[str, str]
    data: bytes


class ConcurrencyConflictError(IntegrityError):
    """Another writer appended to the same subject first."""


async def publish_atomic(nc: NATS, messages: list[OutgoingMessage], timeout: float) -> int:
    """Store `messages` all or nothing; return the stream sequence of the last one.

    The server assigns consecutive sequences to the messages of one batch, so
    message `i` of `n` is stored at `last - n + 1 + i`.
    """
    if not messages:
        raise ProgrammingError("nothing to publish")
    if len(messages) > MAX_ATOMIC_BATCH:
        raise ProgrammingError(
            f"{len(messages)} messages in one atomic write; JetStream allows at most "
            f"{MAX_ATOMIC_BATCH}"
        )
    if len(messages) == 1:
        only = messages[0]
        reply = await nc.request(only.subject, only.data, timeout, headers=only.headers)
        return _sequence_from_ack(reply)
    batch_id = uuid4().hex
    *body, last = messages
    for number, message in enumerate(body, start=1):
        headers = {**message.headers, BATCH_ID: batch_id, BATCH_SEQUENCE: str(number)}
        await nc.publish(message.subject, message.data, headers=headers)
    commit = {
        **last.headers,
        BATCH_ID: batch_id,
        BATCH_SEQUENCE: str(len(messages)),
        BATCH_COMMIT: "1",
    }
    reply = await nc.request(last.subject, last.data, timeout, headers=commit)
    return _sequence_from_ack(reply)


def _sequence_from_ack(reply: Msg) -> int:
    try:
        ack: dict[str, Any] = json.loads(reply.data)
    except ValueError:
        raise OperationalError(f"not a JetStream publish ack: {reply.data[:200]!r}") from None
    error = ack.get("error")
    if error:
        description = error.get("description", "")
        if error.get("err_code") in _WRONG_LAST_SEQUENCE or "wrong last sequence" in description:
            raise ConcurrencyConflictError(f"concurrent write: {description}")
        raise OperationalError(f"JetStream refused the write: {description} ({error})")
    return int(ack["seq"])


async def direct_get_last(nc: NATS, stream: str, subject: str, timeout: float) -> Msg | None:
    """The last message stored on `subject` (wildcards allowed), or None."""
    request = json.dumps({"last_by_subj": subject}).encode()
    reply = await nc.request(f"$JS.API.DIRECT.GET.{stream}", request, timeout)
    status = reply.headers.get(STATUS) if reply.headers else None
    if status == "404":
        return None
    if status is not None:
        raise OperationalError(f"direct get of {subject} failed: {dict(reply.headers or {})}")
    return reply


async def direct_get_batch(
    nc: NATS,
    replies: ReplyRouter,
    stream: str,
    *,
    subject: str,
    start: int,
    batch: int,
    timeout: float,
) -> tuple[list[Msg], int]:
    """Up to `batch` messages on `subject` from sequence `start`, in one request.

    Returns the messages and how many more match after them.
    """
    loop = asyncio.get_running_loop()
    end: asyncio.Future[tuple[str, dict[str, str]]] = loop.create_future()
    received: list[Msg] = []

    def on_message(msg: Msg) -> None:
        status = msg.headers.get(STATUS) if msg.headers else None
        if status is None:
            received.append(msg)
        elif not end.done():
            end.set_result((status, dict(msg.headers or {})))

    reply, token = replies.register(on_message)
    try:
        request = {"seq": max(start, 1), "next_by_subj": subject, "batch": batch}
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(), reply)
        status, headers = await asyncio.wait_for(end, timeout)
    finally:
        replies.unregister(token)
    if status == "404":
        return received, 0
    if status == "204":
        return received, int(headers.get(NUM_PENDING, "0"))
    raise OperationalError(f"batch direct get of {subject} failed: {headers}")
