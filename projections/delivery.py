"""A push consumer's messages taken off the connection in bulk, past nats-py's per-message path.

nats-py turns every delivered message into a regex match, a header dict, a
`Msg` and a coroutine call: on a small machine that caps a replay near 60,000
messages/s, however little the projection does with them. Here the
connection's protocol parser is wrapped (`BulkParser`, once per connection):
complete frames for other subscriptions go to nats-py's own parser unchanged;
the HMSG frames of a registered `Deliveries` are cut out directly: stream and
consumer sequence and pending count from the ack subject, `Es-Topic` and
`Es-Version` from the header block, the body as bytes. A frame as the event
store writes them (those two headers first) is read with one regular
expression match; any other frame of ours the slower way, field by field.

`Deliveries` is one ephemeral push consumer (`ack_policy: none`, flow
control, idle heartbeats), as an ordered consumer is: it notices a gap in the
consumer sequence or a silence longer than two heartbeats (`broken`), and the
reader then makes a new one from its last position.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import TYPE_CHECKING, Any

from nats.aio import client as nats_client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.protocol.parser import AWAITING_CONTROL_LINE, AWAITING_MSG_PAYLOAD

from events.contract import ISSUE_EVENT_TYPES

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

# (stream sequence, topic, version, body): `projections.feeds.Recorded`.
Delivered = tuple[int, str, int, bytes]
_CRLF = b"\r\n"
_TOPIC = b"\r\nEs-Topic: "
_VERSION = b"\r\nEs-Version: "
_STATUS = b"NATS/1.0 "
_FLOW_CONTROL = b"FlowControl"
_LAST_CONSUMER = b"Nats-Last-Consumer: "
_STALLED = b"Nats-Consumer-Stalled: "


def event_frame(sid: int, stream: str, consumer: str) -> re.Pattern[bytes]:
    """A frame of subscription `sid` from `consumer` of `stream`, headers starting with the
    event store's two: HMSG <subject> <sid> $JS.ACK.<stream>.<consumer>.<delivered>.
    <stream seq>.<consumer seq>.<time>.<pending> <header size> <size>. Literal where
    it can be, and without backtracking (possessive): most of a replay's reading.
    Groups: stream sequence, header size, size, topic, version."""
    return re.compile(
        _acked(sid, stream, consumer)
        + rb"\.\d++\.(\d++)\.\d++\.\d++\.\d++ (\d++) (\d++)\r\nNATS/1\.0\r\n"
        rb"Es-Topic: ([^\r\n]*+)\r\nEs-Version: (\d++)\r\n"
    )


def consumer_counts(sid: int, stream: str, consumer: str) -> re.Pattern[bytes]:
    """The same frame's consumer sequence and pending count (groups 1 and 2)."""
    return re.compile(_acked(sid, stream, consumer) + rb"\.\d++\.\d++\.(\d++)\.\d++\.(\d++) ")


def _acked(sid: int, stream: str, consumer: str) -> bytes:
    return (
        rb"HMSG [^ \r\n]++ "
        + str(sid).encode()
        + rb" \$JS\.ACK\."
        + re.escape(stream.encode())
        + rb"\."
        + re.escape(consumer.encode())
    )


_TOPICS = {kind.__name__.encode(): kind.__name__ for kind in ISSUE_EVENT_TYPES}
# Bytes nats-py takes off the socket at once, and buffers before it stops reading.
READ_BYTES = 256 * 1024


def widen_reads(nc: NATS) -> None:
    """Let `nc` (and any connection made later) read up to `READ_BYTES` at a time.

    nats-py reads 32 KB at a time and stops reading the socket once 64 KB wait
    (`DEFAULT_BUFFER_SIZE`, the StreamReader's limit): a replay's stream arrives
    far faster, and each read costs a turn of the event loop. Wider reads take
    a quarter off the reading's CPU (measured: 2.5 -> 2.1 s per million events).
    """
    if nats_client.DEFAULT_BUFFER_SIZE < READ_BYTES:
        nats_client.DEFAULT_BUFFER_SIZE = READ_BYTES  # read per call; limit of new connections
    reader = getattr(nc._transport, "_io_reader", None)
    if reader is not None and getattr(reader, "_limit", READ_BYTES) < READ_BYTES:
        reader._limit = READ_BYTES


class BulkParser:
    """Wraps a connection's parser; registered subscriptions get their messages in bulk."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.original = nc._ps
        self.buf = b""
        self.by_sid: dict[int, Deliveries] = {}

    @classmethod
    def of(cls, nc: NATS) -> BulkParser:
        """The connection's bulk parser, installed on first use."""
        installed: Any = nc._ps
        if isinstance(installed, BulkParser):
            return installed
        widen_reads(nc)
        parser = cls(nc)
        installed = parser
        nc._ps = installed
        return parser

    def reset(self) -> None:  # nats-py calls this on (re)connect
        self.buf = b""
        self.original.reset()

    async def parse(self, data: bytes = b"") -> None:
        data = await self._finish_original_frame(data)
        buf = self.buf + data if self.buf else data
        pos, end, by_sid = 0, len(buf), self.by_sid
        touched: set[Deliveries] = set()
        while pos < end:
            taken = self._take_events(buf, pos, end, touched)
            if taken != pos:
                pos = taken
                continue
            eol = buf.find(_CRLF, pos)
            if eol < 0:
                break
            if buf.startswith(b"HMSG ", pos) or buf.startswith(b"MSG ", pos):
                args = buf[pos:eol].split()
                stop = eol + 2 + int(args[-1]) + 2
                if stop > end:
                    break
                deliveries = by_sid.get(int(args[2]))
                if deliveries is None:
                    await self.original.parse(buf[pos:stop])
                else:
                    touched.add(deliveries)
                    _deliver(deliveries, args, buf, eol + 2, stop - 2)
                pos = stop
            else:
                await self.original.parse(buf[pos : eol + 2])
                pos = eol + 2
        self.buf = buf[pos:]
        for deliveries in touched:
            deliveries.heard = time.monotonic()
            deliveries.arrived.set()

    def _take_events(self, buf: bytes, pos: int, end: int, touched: set[Deliveries]) -> int:
        """Event frames from `pos` on, as the event store writes them, of one registered
        subscription: each from one match, the state kept in locals until they stop
        (another kind of frame, another subscription, an incomplete frame). Where they
        stopped: `pos` when there were none.

        The consumer sequences are checked for the run, not per frame: the server
        numbers a consumer's deliveries upwards, so the run has no gap when its
        first follows the last one before and its last is the first plus the
        frames between. After a gap the whole run is dropped (`broken`): a new
        consumer reads it again from the last event taken."""
        for deliveries in self.by_sid.values():  # one, mostly
            match = deliveries.frame.match
            found = match(buf, pos)
            if found is not None:
                break
        else:
            return pos
        ready = deliveries.ready
        append, topics, began = ready.append, _TOPICS, len(ready)
        first = last = pos
        while found is not None:
            sequence, header_size, size, topic, version = found.groups()
            start = found.end(3) + 2
            stop = start + int(size)
            if stop + 2 > end:
                break
            append(
                (
                    int(sequence),
                    topics.get(topic) or topic.decode(),
                    int(version),
                    buf[start + int(header_size) : stop],
                )
            )
            last, pos = pos, stop + 2
            found = match(buf, pos)
        taken = len(ready) - began
        if not taken:
            return pos
        counts = deliveries.counts.match
        first_consumed = int(counts(buf, first)[1])  # type: ignore[index]
        last_consumed, pending = counts(buf, last).groups()  # type: ignore[union-attr]
        expected = deliveries.consumer_sequence + 1
        if (
            deliveries.broken
            or first_consumed != expected
            or (int(last_consumed) != expected + taken - 1)
        ):
            del ready[began:]  # read again by a new consumer
            deliveries.broken = True
        else:
            deliveries.consumer_sequence = expected + taken - 1
            deliveries.pending = int(pending)
        touched.add(deliveries)
        return pos

    async def _finish_original_frame(self, data: bytes) -> bytes:
        """Installed while nats-py's parser held part of a frame: let it have the rest."""
        original = self.original
        if original.state == AWAITING_MSG_PAYLOAD:
            missing = original.needed + 2 - len(original.buf)
            await original.parse(data[:missing])
            return data[missing:]
        if original.state == AWAITING_CONTROL_LINE and original.buf:
            data = bytes(original.buf) + data
            original.buf.clear()
        return data


def _deliver(deliveries: Deliveries, args: list[bytes], buf: bytes, start: int, end: int) -> None:
    """One frame of `deliveries`, its body at `buf[start:end]`; never raises into nats-py."""
    try:
        if args[0] == b"HMSG":  # HMSG subject sid [reply] header-size total-size
            reply = args[3] if len(args) == 6 else b""
            deliveries.take_frame(reply, buf, start, int(args[-2]), end)
        else:  # MSG subject sid [reply] size: no headers, so no event; still a delivery
            deliveries.take_frame(args[3] if len(args) == 5 else b"", buf, start, 0, end)
    except Exception:  # not what a JetStream delivery looks like: start again from there
        deliveries.broken = True
        deliveries.arrived.set()


class Deliveries:
    """One ephemeral push consumer on `filter` from `start`, delivering into lists."""

    def __init__(
        self, nc: NATS, stream: str, filter: str, start: int, heartbeat: float, timeout: float
    ) -> None:
        self.nc = nc
        self.stream = stream
        self.filter = filter
        self.start = start
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.ready: list[Delivered] = []
        self.arrived = asyncio.Event()
        self.consumer_sequence = 0
        self.pending = 0  # stored behind the last delivery, when it was delivered
        self.broken = False
        self.heard = time.monotonic()
        # (deliveries before it, reply subject) of each flow control request.
        self._flow_control: list[tuple[int, bytes]] = []
        self._taken = 0
        self._answering: set[asyncio.Future[None]] = set()
        self._sub: Any = None
        self._consumer: str | None = None
        # Until the consumer is known: matches nothing (its frames are read field by field).
        self.frame: re.Pattern[bytes] = re.compile(rb"(?!)")
        self.counts = self.frame

    async def __aenter__(self) -> Deliveries:
        parser = BulkParser.of(self.nc)
        inbox = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(inbox)
        parser.by_sid[self._sub._id] = self
        config = ConsumerConfig(
            deliver_subject=inbox,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if self.start > 1 else DeliverPolicy.ALL,
            opt_start_seq=self.start if self.start > 1 else None,
            ack_policy=AckPolicy.NONE,
            max_deliver=1,
            filter_subject=self.filter,
            flow_control=True,
            idle_heartbeat=self.heartbeat,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=max(30.0, 10 * self.heartbeat),
        )
        try:
            info = await self.nc.jetstream(timeout=self.timeout).add_consumer(
                self.stream, config=config
            )
        except BaseException:
            await self.__aexit__()
            raise
        self._consumer = info.name
        self.frame = event_frame(self._sub._id, self.stream, info.name)
        self.counts = consumer_counts(self._sub._id, self.stream, info.name)
        self.heard = time.monotonic()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sub is not None:
            BulkParser.of(self.nc).by_sid.pop(self._sub._id, None)
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        if self._consumer is not None and self.nc.is_connected:
            with contextlib.suppress(Exception):
                await self.nc.jetstream(timeout=self.timeout).delete_consumer(
                    self.stream, self._consumer
                )

    def take_frame(self, reply: bytes, buf: bytes, start: int, header_size: int, end: int) -> None:
        """One frame of ours: a delivery, a flow control request or a heartbeat."""
        self.heard = time.monotonic()
        if buf.startswith(_STATUS, start):
            self._control(reply, buf[start : start + header_size])
            return
        if self.broken:
            return
        tokens = reply.split(b".")
        # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
        # or, with domain and account hash, two tokens more and one random token after.
        base = 5 if len(tokens) == 9 else 7
        consumer_sequence = int(tokens[base + 1])
        if consumer_sequence != self.consumer_sequence + 1:
            self.broken = True  # a gap: the reader makes a new consumer from its position
            self.arrived.set()
            return
        self.consumer_sequence = consumer_sequence
        topic, version = "", 0
        if header_size:
            at = buf.find(_TOPIC, start, start + header_size)
            if at >= 0:
                at += len(_TOPIC)
                topic = buf[at : buf.find(_CRLF, at)].decode()
            at = buf.find(_VERSION, start, start + header_size)
            if at >= 0:
                at += len(_VERSION)
                version = int(buf[at : buf.find(_CRLF, at)])
        self.ready.append((int(tokens[base]), topic, version, buf[start + header_size : end]))
        self.pending = int(tokens[base + 3])
        self.arrived.set()

    def _control(self, reply: bytes, headers: bytes) -> None:
        if _FLOW_CONTROL in headers[:40] and reply:
            # Answered once what came before it has been taken (`take`): back pressure.
            self._flow_control.append((self._delivered, reply))
            return
        at = headers.find(_STALLED)
        if at >= 0:
            # The server waits for the answer to a flow control request: the same one,
            # answered the same way (at once, if everything delivered was taken).
            at += len(_STALLED)
            self._flow_control.append((self._delivered, headers[at : headers.find(_CRLF, at)]))
            self._answer_taken()
        at = headers.find(_LAST_CONSUMER)
        if at >= 0:
            at += len(_LAST_CONSUMER)
            if int(headers[at : headers.find(_CRLF, at)]) != self.consumer_sequence:
                self.broken = True
                self.arrived.set()

    def _answer(self, reply: bytes) -> None:
        task = asyncio.ensure_future(self.nc.publish(reply.decode()))
        self._answering.add(task)
        task.add_done_callback(self._answered)

    def _answered(self, task: asyncio.Future[None]) -> None:
        self._answering.discard(task)
        if not task.cancelled():
            task.exception()  # a connection that is gone: the heartbeat check notices

    def take(self, limit: int) -> list[Delivered]:
        """Up to `limit` deliveries, oldest first; answers the flow control requests
        sent after them, so the server stays at most a window ahead of the reader."""
        taken = self.ready[:limit]
        del self.ready[:limit]
        if not self.ready:
            self.arrived.clear()
        self._taken += len(taken)
        self._answer_taken()
        return taken

    def _answer_taken(self) -> None:
        """Answer the flow control requests sent after deliveries that have been taken."""
        while self._flow_control and self._flow_control[0][0] <= self._taken:
            self._answer(self._flow_control.pop(0)[1])

    @property
    def _delivered(self) -> int:
        return self._taken + len(self.ready)

    @property
    def silent(self) -> bool:
        """No message and no heartbeat for over two heartbeats: the consumer may be gone."""
        return time.monotonic() - self.heard > 2 * self.heartbeat

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.arrived.wait()
