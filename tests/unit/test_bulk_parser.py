"""The bulk reader's frame parsing (`projections.delivery.BulkParser`), without a server.

Event frames as the event store writes them are cut out many at a time; the
consumer sequences are checked per run of frames. A gap anywhere in a run
must leave no event of that run taken (a new consumer reads them again from
the last event taken), and a run must follow on from the one before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from projections.delivery import BulkParser, Deliveries, consumer_counts, event_frame

SID = 7
STREAM = "EVENTS"
CONSUMER = "c0nsumer"


class _OriginalParser:
    """nats-py's parser, as far as the bulk parser uses it: what it was handed."""

    state = 0
    buf = b""

    def __init__(self) -> None:
        self.handed: list[bytes] = []

    async def parse(self, data: bytes) -> None:
        self.handed.append(data)

    def reset(self) -> None:
        pass


class _Connection:
    def __init__(self) -> None:
        self._ps: Any = _OriginalParser()
        self._transport = None


def frame(stream_seq: int, consumer_seq: int, pending: int = 0, version: int = 1) -> bytes:
    headers = f"NATS/1.0\r\nEs-Topic: OwnershipClaimed\r\nEs-Version: {version}\r\n\r\n".encode()
    body = b'{"type":"OwnershipClaimed","n":%d}' % stream_seq
    reply = (
        f"$JS.ACK.{STREAM}.{CONSUMER}.1.{stream_seq}.{consumer_seq}.1700000000000000000.{pending}"
    )
    line = f"HMSG ev.b.issue.{stream_seq} {SID} {reply} {len(headers)} {len(headers) + len(body)}"
    return line.encode() + b"\r\n" + headers + body + b"\r\n"


def reader() -> tuple[BulkParser, Deliveries]:
    connection: Any = _Connection()
    parser = BulkParser.of(connection)
    deliveries = Deliveries(connection, STREAM, "ev.*.issue.*", 1, 1.0, 1.0)
    deliveries.frame = event_frame(SID, STREAM, CONSUMER)
    deliveries.counts = consumer_counts(SID, STREAM, CONSUMER)
    parser.by_sid[SID] = deliveries
    return parser, deliveries


def parse(parser: BulkParser, *chunks: bytes) -> None:
    async def feed() -> None:
        for chunk in chunks:
            await parser.parse(chunk)

    asyncio.run(feed())


def test_a_run_of_frames_is_taken_in_order_with_the_pending_count_of_its_last() -> None:
    parser, deliveries = reader()
    parse(parser, b"".join(frame(10 + n, n + 1, pending=100 - n, version=n + 1) for n in range(50)))
    assert not deliveries.broken
    assert [d[0] for d in deliveries.ready] == list(range(10, 60))
    assert [d[2] for d in deliveries.ready] == list(range(1, 51))
    assert deliveries.ready[0][1] == "OwnershipClaimed"
    assert deliveries.ready[3][3] == b'{"type":"OwnershipClaimed","n":13}'
    assert deliveries.consumer_sequence == 50
    assert deliveries.pending == 51


def test_frames_split_across_reads_are_joined() -> None:
    parser, deliveries = reader()
    data = b"".join(frame(n, n) for n in range(1, 21))
    parse(parser, *(data[at : at + 37] for at in range(0, len(data), 37)))
    assert not deliveries.broken
    assert [d[0] for d in deliveries.ready] == list(range(1, 21))
    assert deliveries.consumer_sequence == 20


def test_a_gap_inside_a_run_takes_none_of_it() -> None:
    parser, deliveries = reader()
    parse(parser, b"".join(frame(n, n) for n in range(1, 6)))
    # Consumer sequence 9 after 8 is missing: everything of this run is read again.
    parse(parser, frame(6, 6) + frame(7, 7) + frame(8, 8) + frame(10, 10) + frame(11, 11))
    assert deliveries.broken
    assert [d[0] for d in deliveries.ready] == [1, 2, 3, 4, 5]


def test_a_run_that_does_not_follow_the_last_one_is_a_gap() -> None:
    parser, deliveries = reader()
    parse(parser, frame(1, 1) + frame(2, 2))
    parse(parser, frame(4, 4) + frame(5, 5))
    assert deliveries.broken
    assert [d[0] for d in deliveries.ready] == [1, 2]


def test_a_run_that_goes_back_is_not_taken_though_its_count_adds_up() -> None:
    parser, deliveries = reader()
    parse(parser, frame(1, 1) + frame(2, 2))
    parse(parser, frame(3, 2) + frame(4, 4))  # 2 again, then 4: two frames, ending at 4
    assert deliveries.broken
    assert [d[0] for d in deliveries.ready] == [1, 2]


def test_after_a_gap_nothing_more_is_taken() -> None:
    parser, deliveries = reader()
    parse(parser, frame(1, 1) + frame(3, 3))
    parse(parser, frame(4, 4) + frame(5, 5))
    assert deliveries.broken
    assert deliveries.ready == []


def test_other_frames_between_runs_go_to_nats_py() -> None:
    parser, deliveries = reader()
    ping = b"PING\r\n"
    parse(parser, frame(1, 1) + ping + frame(2, 2))
    assert not deliveries.broken
    assert [d[0] for d in deliveries.ready] == [1, 2]
    assert parser.original.handed == [ping]  # type: ignore[attr-defined]
