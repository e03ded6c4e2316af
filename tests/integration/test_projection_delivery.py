"""The projection's bulk reader (`projections.delivery`) on a real nats-server.

Frames as the event store writes them take the one-match path, others the
field-by-field one; both must give the same deliveries, in order. Flow
control must hold the server back while nobody takes what was delivered: a
replay's memory is bounded by the server's window, not by the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import nats
import pytest
from nats.js.api import StreamConfig

from projections.delivery import READ_BYTES, Deliveries
from services.embedded_nats import EmbeddedNats

pytestmark = pytest.mark.anyio
BODY = b'{"type":"OwnershipClaimed","note":"' + b"x" * 900 + b'"}'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def stream(shared_nats: EmbeddedNats) -> AsyncIterator[tuple[nats.NATS, str, str]]:
    """A connection and a fresh stream `(name, prefix)` on the shared server."""
    nc = await nats.connect(shared_nats.url)
    prefix = f"d{uuid4().hex[:10]}"
    name = stream_of(prefix)
    await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{prefix}.>"]))
    try:
        yield nc, name, prefix
    finally:
        await nc.jetstream().delete_stream(name)
        await nc.close()


async def publish(nc: nats.NATS, prefix: str, count: int, *, odd_headers: bool = False) -> None:
    """`count` events on `<prefix>.<n>.issue.<n>`; with `odd_headers` the headers come in
    another order than the event store writes them (the slower path)."""
    for n in range(count):
        headers = {"Es-Topic": "OwnershipClaimed", "Es-Version": str(n + 1)}
        if odd_headers:
            headers = {"Other": "1", **headers}
        await nc.publish(f"{prefix}.b.issue.{n % 7}", BODY, headers=headers)
    await nc.flush()
    async with asyncio.timeout(30):  # published without acks: until the stream has them all
        while (await nc.jetstream().stream_info(stream_of(prefix))).state.messages < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def stream_of(prefix: str) -> str:
    return prefix.upper()


async def take_all(deliveries: Deliveries, count: int) -> list[tuple[int, str, int, bytes]]:
    taken: list[tuple[int, str, int, bytes]] = []
    async with asyncio.timeout(30):
        while len(taken) < count:
            await deliveries.wait(0.1)
            taken.extend(deliveries.take(1000))
    return taken


@pytest.mark.parametrize("odd_headers", [False, True])
async def test_every_delivery_arrives_in_order_with_its_topic_and_version(
    stream: tuple[nats.NATS, str, str], odd_headers: bool
) -> None:
    nc, name, prefix = stream
    await publish(nc, prefix, 300, odd_headers=odd_headers)
    async with Deliveries(nc, name, f"{prefix}.*.issue.*", 1, 1.0, 5.0) as deliveries:
        taken = await take_all(deliveries, 300)
        assert not deliveries.broken
    assert [d[0] for d in taken] == list(range(1, 301))
    assert {d[1] for d in taken} == {"OwnershipClaimed"}
    assert [d[2] for d in taken] == list(range(1, 301))
    assert {d[3] for d in taken} == {BODY}


async def test_flow_control_holds_the_server_back_until_deliveries_are_taken(
    stream: tuple[nats.NATS, str, str],
) -> None:
    nc, name, prefix = stream
    count = 20_000  # ~20 MB: far more than the server sends without an answer
    await publish(nc, prefix, count)
    async with Deliveries(nc, name, f"{prefix}.*.issue.*", 1, 0.5, 5.0) as deliveries:
        # Nobody takes: after a few heartbeats (each says "stalled") it is still held back.
        await asyncio.sleep(3)
        held = len(deliveries.ready)
        assert 0 < held < count
        taken = await take_all(deliveries, count)
        assert not deliveries.broken
    assert [d[0] for d in taken] == list(range(1, count + 1))


async def test_the_connection_reads_wide_once_a_replay_reads_from_it(
    stream: tuple[nats.NATS, str, str],
) -> None:
    nc, name, prefix = stream
    await publish(nc, prefix, 300)
    async with Deliveries(nc, name, f"{prefix}.*.issue.*", 1, 1.0, 5.0) as deliveries:
        # nats-py's 32 KB reads and 64 KB buffer cost a turn of the event loop each.
        assert nc._transport._io_reader._limit >= READ_BYTES  # type: ignore[union-attr]
        taken = await take_all(deliveries, 300)
    assert [d[0] for d in taken] == list(range(1, 301))
