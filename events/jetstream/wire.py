"""JetStream requests the store needs and nats-py does not offer: atomic batch
publish (ADR-50, nats-server >= 2.12) and batch direct get (ADR-31).

All are coroutines run on the client's loop thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple
from uuid import uuid4

import nats.errors
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


class OutgoingMessage(NamedTuple):
    """One message of a write (a tuple: hundreds are made for every atomic batch).

    `lines`, when given, are `headers` already written as header lines (checked
    for line breaks by whoever wrote them), so they are not written again.
    """

    subject: str
    headers: dict[str, str]
    data: bytes
    lines: str = ""


class ConcurrencyConflictError(IntegrityError):
    """Another writer appended to the same subject first."""


async def publish_atomic(
    nc: NATS,
    messages: list[OutgoingMessage],
    timeout: float,
    replies: ReplyRouter | None = None,
    expected: Mapping[int, int] | None = None,
) -> int:
    """Store `messages` all or nothing; return the stream sequence of the last one.

    The server assigns consecutive sequences to the messages of one batch, so
    message `i` of `n` is stored at `last - n + 1 + i`.

    With `replies` (the connection's reply router), the whole batch is encoded
    here and handed to the connection as one write, its ack routed back to
    us: per message, that is a fraction of what `nc.publish` costs.

    `expected`: message index -> its `Nats-Expected-Last-Subject-Sequence`, added
    to those messages' headers (instead of copying them beforehand).
    """
    if not messages:
        raise ProgrammingError("nothing to publish")
    if len(messages) > MAX_ATOMIC_BATCH:
        raise ProgrammingError(
            f"{len(messages)} messages in one atomic write; JetStream allows at most "
            f"{MAX_ATOMIC_BATCH}"
        )
    if replies is not None and _can_write_raw(nc):
        return await _publish_atomic_raw(nc, messages, timeout, replies, expected or {})
    if expected:
        messages = [
            message
            if index not in expected
            else message._replace(
                headers={**message.headers, EXPECTED_LAST_SUBJECT_SEQUENCE: str(expected[index])}
            )
            for index, message in enumerate(messages)
        ]
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


async def _publish_atomic_raw(
    nc: NATS,
    messages: list[OutgoingMessage],
    timeout: float,
    replies: ReplyRouter,
    expected: Mapping[int, int],
) -> int:
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[Msg] = loop.create_future()

    def on_reply(msg: Msg) -> None:
        if not answered.done():
            answered.set_result(msg)

    inbox, token = replies.register(on_reply)
    try:
        largest = max(len(message.data) for message in messages)
        if largest > nc.max_payload:  # the server would close the connection over it
            raise nats.errors.MaxPayloadError
        parts = encode_atomic_batch(messages, expected, inbox)
        await write_raw(nc, parts)
        reply = await asyncio.wait_for(answered, timeout)
    finally:
        replies.unregister(token)
    status = reply.headers.get(STATUS) if reply.headers else None
    if status == "503":
        raise nats.errors.NoRespondersError
    return _sequence_from_ack(reply)


def encode_atomic_batch(
    messages: Sequence[OutgoingMessage], expected: Mapping[int, int], reply: str
) -> list[bytes]:
    """The `HPUB`s of an atomic batch (one plain publish if one message); the last,
    the commit, asks for the ack on `reply`. `expected`: as for `publish_atomic`."""
    count = len(messages)
    batch = f"{BATCH_ID}: {uuid4().hex}\r\n{BATCH_SEQUENCE}: " if count > 1 else ""
    parts: list[bytes] = []
    add = parts.append
    for index, (subject, headers, data, lines) in enumerate(messages):
        if not lines:
            lines = header_lines(headers)
        if index in expected:
            lines += f"{EXPECTED_LAST_SUBJECT_SEQUENCE}: {expected[index]}\r\n"
        if batch:
            lines += f"{batch}{index + 1}\r\n"
        if index == count - 1:
            if batch:
                lines += f"{BATCH_COMMIT}: 1\r\n"
            subject = f"{subject} {reply}"
        header_block = f"NATS/1.0\r\n{lines}\r\n".encode()
        size = len(header_block)
        add(f"HPUB {subject} {size} {size + len(data)}\r\n".encode())
        add(header_block)
        add(data)
        add(b"\r\n")
    return parts


def _can_write_raw(nc: NATS) -> bool:
    return hasattr(nc, "_send_command") and hasattr(nc, "_flush_pending")


def header_lines(headers: Mapping[str, str]) -> str:
    """`Name: value` lines of `headers`.

    Names and values are the store's own (topics, numbers, ids): a line break
    in one would forge another header, so it is refused.
    """
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if lines.count("\r") != len(headers) or lines.count("\n") != len(headers):
        raise ProgrammingError(f"a line break in a header: {lines!r}")
    return lines


def encode_headers(headers: Mapping[str, str], extra: str = "") -> bytes:
    """A NATS header block: `NATS/1.0`, `Name: value` lines, a blank line."""
    return f"NATS/1.0\r\n{header_lines(headers)}{extra}\r\n".encode()


def encode_hpub(
    subject: str, headers: Mapping[str, str], data: bytes, reply: str = "", extra: str = ""
) -> bytes:
    """The protocol's `HPUB` of one message (`subject` must be a checked subject)."""
    header_block = encode_headers(headers, extra)
    size = len(header_block)
    target = f"{subject} {reply}" if reply else subject
    return b"".join(
        (
            f"HPUB {target} {size} {size + len(data)}\r\n".encode(),
            header_block,
            data,
            b"\r\n",
        )
    )


def encode_pub(subject: str, data: bytes = b"") -> bytes:
    """The protocol's `PUB` of one message without headers (an ack, say)."""
    return b"".join((f"PUB {subject} {len(data)}\r\n".encode(), data, b"\r\n"))


async def write_raw(nc: NATS, commands: Iterable[bytes]) -> None:
    """Hand encoded protocol commands to the connection as one write, and flush it.

    Like `nc.publish` with `pending_size=0`: refused (`OutboundBufferLimitError`)
    while disconnected, never buffered for a replay after reconnecting.
    """
    if nc.is_closed:
        raise nats.errors.ConnectionClosedError
    if not nc.is_connected:
        raise nats.errors.OutboundBufferLimitError
    await nc._send_command(b"".join(commands))
    await nc._flush_pending()


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
    subject: str | None,
    start: int,
    batch: int,
    timeout: float,
) -> tuple[list[Msg], int]:
    """Up to `batch` messages on `subject` (None: any) from sequence `start`, in one request.

    Returns the messages and how many more match after them. A wildcard
    `subject` costs the server dearly per message (nats-server 2.15: ~80 µs for
    `events.>` in a log of a million issues, each its own subject; ~14 µs
    with no subject at all): a long read of most of a stream had better take
    every message and skip the few it does not want.
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
        request: dict[str, object] = {"seq": max(start, 1), "batch": batch}
        if subject is not None:
            request["next_by_subj"] = subject
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(), reply)
        status, headers = await asyncio.wait_for(end, timeout)
    finally:
        replies.unregister(token)
    if status == "404":
        return received, 0
    if status == "204":
        return received, int(headers.get(NUM_PENDING, "0"))
    raise OperationalError(f"batch direct get of {subject or stream} failed: {headers}")
