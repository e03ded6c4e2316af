"""`BatchFetcher`: intake's pull requests on a real nats-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from uuid import uuid4

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from services.coordination.intake_fetch import BatchFetcher
from services.coordination.intake_handler import stream_sequence
from services.embedded_nats import EmbeddedNats

Story = Callable[[nats.NATS, JetStreamContext, str, BatchFetcher], Awaitable[None]]


def run(server: EmbeddedNats, story: Story) -> None:
    """`story` with a fresh stream (`<name>.>`) and durable pull consumer, fetched from."""

    async def main() -> None:
        name = f"F{uuid4().hex[:10]}"
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
        await js.add_consumer(
            name, ConsumerConfig(durable_name="c", ack_policy=AckPolicy.EXPLICIT, ack_wait=30)
        )
        fetcher = BatchFetcher(nc, name, "c")
        await fetcher.start()
        try:
            await story(nc, js, name, fetcher)
        finally:
            await fetcher.stop()
            await js.delete_stream(name)
            await nc.close()

    asyncio.run(main())


async def publish(js: JetStreamContext, name: str, count: int, first: int = 0) -> None:
    for n in range(first, first + count):
        await js.publish(f"{name}.x", str(n).encode(), headers={"Nats-Msg-Id": str(n)})


def bodies(messages: list[Msg]) -> list[int]:
    return [int(m.data) for m in messages]


def test_what_is_there_comes_in_order_up_to_a_batch_then_nothing(
    shared_nats: EmbeddedNats,
) -> None:
    async def story(nc: nats.NATS, js: JetStreamContext, name: str, f: BatchFetcher) -> None:
        await publish(js, name, 25)
        first = await f.fetch(10, wait=1.0)
        assert bodies(first) == list(range(10))
        assert [stream_sequence(m) for m in first] == list(range(1, 11))
        assert [m.metadata.sequence.stream for m in first] == list(range(1, 11))
        assert bodies(await f.fetch(100, wait=1.0)) == list(range(10, 25))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await f.fetch(100, wait=0.3)
        assert time.monotonic() - started < 2.0

    run(shared_nats, story)


def test_a_fetch_waits_for_what_comes_and_acks_work_as_usual(shared_nats: EmbeddedNats) -> None:
    async def story(nc: nats.NATS, js: JetStreamContext, name: str, f: BatchFetcher) -> None:
        async def later() -> None:
            await asyncio.sleep(0.2)
            await publish(js, name, 3)

        publishing = asyncio.create_task(later())
        got = await f.fetch(3, wait=5.0)
        await publishing
        while len(got) < 3:  # a fetch returns what is there: the rest may still be coming
            got += await f.fetch(3 - len(got), wait=2.0)
        assert bodies(got) == [0, 1, 2]
        for msg in got:
            await msg.ack_sync()
        info = await js.consumer_info(name, "c")
        assert info.num_ack_pending == 0
        assert info.ack_floor.stream_seq == 3

    run(shared_nats, story)


def test_a_waiting_fetch_returns_with_the_first_message_and_keeps_what_follows(
    shared_nats: EmbeddedNats,
) -> None:
    # Freshness: a quiet moment's first signal is not held until a batch is full.
    async def story(nc: nats.NATS, js: JetStreamContext, name: str, f: BatchFetcher) -> None:
        async def later() -> None:
            await asyncio.sleep(0.2)
            await publish(js, name, 1)
            await asyncio.sleep(0.3)
            await publish(js, name, 2, first=1)

        publishing = asyncio.create_task(later())
        started = time.monotonic()
        first = await f.fetch(100, wait=10.0)
        assert bodies(first) == [0]
        assert time.monotonic() - started < 5.0  # not the 10 s the request may linger
        await publishing
        rest = await f.fetch(100, wait=2.0)
        rest += [] if len(rest) == 2 else await f.fetch(100, wait=2.0)
        assert bodies(rest) == [1, 2]

    run(shared_nats, story)


def test_the_end_of_an_earlier_request_does_not_end_the_next(shared_nats: EmbeddedNats) -> None:
    async def story(nc: nats.NATS, js: JetStreamContext, name: str, f: BatchFetcher) -> None:
        with pytest.raises(TimeoutError):
            await f.fetch(5, wait=0.2)  # both its requests ended (404, then 408) or expired
        await publish(js, name, 4)
        # A late status of request 1 arrives while request 3 is waited for: ignored.
        late = Msg(nc, subject=f.inbox_of("1"), headers={"Status": "408"})
        fetching = asyncio.create_task(f.fetch(4, wait=2.0))
        await asyncio.sleep(0)
        await f._on_message(late)
        assert bodies(await fetching) == [0, 1, 2, 3]

    run(shared_nats, story)


def test_a_refusal_of_the_server_is_an_error(shared_nats: EmbeddedNats) -> None:
    async def story(nc: nats.NATS, js: JetStreamContext, name: str, f: BatchFetcher) -> None:
        gone = BatchFetcher(nc, name, "no-such-consumer")
        await gone.start()
        try:
            with pytest.raises((nats.js.errors.APIError, TimeoutError)):
                await gone.fetch(5, wait=0.5)
        finally:
            await gone.stop()

    run(shared_nats, story)
