"""`publish_signals`: many signals as one JetStream atomic batch, each keeping
its `Nats-Msg-Id`, against a real nats-server (`sync_interval: always`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NATS

from events.contract import Location, Signal
from services.embedded_nats import EmbeddedNats
from services.partner import Published, publish_signal, publish_signals
from services.settings import Settings
from services.streams import INTAKE_STREAM, ensure_intake_stream, intake_stream_config

T = TypeVar("T")


def signal(ref: str) -> Signal:
    return Signal(
        signal_ref=ref,
        buurt="BU0363FF03",
        category="grof-vuil",
        summary=f"Grof vuil ({ref})",
        observed_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        location=Location(key="louweshoek-parkeerplaats"),
    )


def run(url: str, work: Callable[[NATS], Awaitable[T]]) -> T:
    async def connected() -> T:
        nc = await nats.connect(url)
        try:
            return await work(nc)
        finally:
            await nc.close()

    return asyncio.run(connected())


async def stored(nc: NATS) -> list[tuple[int, str, str, str]]:
    """Every INTAKE message: (sequence, subject, Nats-Msg-Id, signalRef)."""
    js = nc.jetstream()
    info = await js.stream_info(INTAKE_STREAM)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(INTAKE_STREAM, seq)
        assert msg.headers is not None and msg.data is not None
        out.append(
            (seq, msg.subject, msg.headers["Nats-Msg-Id"], json.loads(msg.data)["signalRef"])
        )
    return out


@pytest.fixture
def intake(nats_server: EmbeddedNats, tmp_path: Path) -> str:
    """The server's URL, INTAKE created as the service creates it."""
    settings = Settings(data_dir=tmp_path)
    run(nats_server.url, lambda nc: ensure_intake_stream(nc, settings))
    return nats_server.url


BATCH = [("woonzorg", signal("wz-1")), ("stadgenoot", signal("sg-1")), ("woonzorg", signal("wz-2"))]


def test_a_batch_is_stored_in_order_each_signal_with_its_message_id(intake: str) -> None:
    published = run(intake, lambda nc: publish_signals(nc, BATCH))
    assert published == [Published(INTAKE_STREAM, seq, False) for seq in (1, 2, 3)]
    assert run(intake, stored) == [
        (1, "intake.woonzorg.signals", "woonzorg/wz-1", "wz-1"),
        (2, "intake.stadgenoot.signals", "stadgenoot/sg-1", "sg-1"),
        (3, "intake.woonzorg.signals", "woonzorg/wz-2", "wz-2"),
    ]


def test_a_repeat_in_the_batch_loses_none_of_the_other_signals(intake: str) -> None:
    async def work(nc: NATS) -> list[Published]:
        await publish_signal(nc, "stadgenoot", signal("sg-1"))
        # JetStream refuses the atomic batch whole: it holds a repeat.
        return await publish_signals(nc, BATCH)

    published = run(intake, work)
    assert [p.duplicate for p in published] == [False, True, False]
    assert [ref for *_, ref in run(intake, stored)] == ["sg-1", "wz-1", "wz-2"]


def test_sending_a_batch_again_changes_nothing(intake: str) -> None:
    first = run(intake, lambda nc: publish_signals(nc, BATCH))
    again = run(intake, lambda nc: publish_signals(nc, BATCH))
    assert [p.duplicate for p in again] == [True, True, True]
    assert [p.sequence for p in again] == [p.sequence for p in first]
    assert len(run(intake, stored)) == 3


def test_the_same_signal_twice_in_one_batch_is_stored_once(intake: str) -> None:
    twice = [*BATCH, ("woonzorg", signal("wz-1"))]
    published = run(intake, lambda nc: publish_signals(nc, twice))
    assert [p.duplicate for p in published] == [False, False, False, True]
    assert [ref for *_, ref in run(intake, stored)] == ["wz-1", "sg-1", "wz-2"]


def test_a_full_batch_of_a_thousand_is_one_publish(intake: str) -> None:
    many = [("woonzorg", signal(f"wz-{n}")) for n in range(1000)]
    published = run(intake, lambda nc: publish_signals(nc, many))
    assert [p.sequence for p in published] == list(range(1, 1001))
    assert [ref for *_, ref in run(intake, stored)] == [f"wz-{n}" for n in range(1000)]
    with pytest.raises(ValueError, match="at most 1000"):
        run(intake, lambda nc: publish_signals(nc, [*many, ("woonzorg", signal("one-more"))]))


def test_an_intake_stream_without_atomic_batches_still_gets_every_signal(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async def older_intake(nc: NATS) -> list[Published]:
        config = intake_stream_config(Settings(data_dir=tmp_path))
        config.allow_atomic = False
        await nc.jetstream().add_stream(config)
        await publish_signal(nc, "woonzorg", signal("wz-0"))
        return await publish_signals(nc, BATCH)

    published = run(nats_server.url, older_intake)
    assert [p.sequence for p in published] == [2, 3, 4]
    # Bringing that stream to the configured settings keeps what it holds,
    # and from then on a batch is atomic.
    run(nats_server.url, lambda nc: ensure_intake_stream(nc, Settings(data_dir=tmp_path)))
    more = [("woonzorg", signal("wz-3")), ("woonzorg", signal("wz-4"))]
    assert [p.sequence for p in run(nats_server.url, lambda nc: publish_signals(nc, more))] == [
        5,
        6,
    ]

    async def batch_headers(nc: NATS) -> str | None:
        msg = await nc.jetstream().get_msg(INTAKE_STREAM, 6)
        return (msg.headers or {}).get("Nats-Batch-Commit")

    assert run(nats_server.url, batch_headers) == "1"
    assert [ref for *_, ref in run(nats_server.url, stored)] == [
        "wz-0",
        "wz-1",
        "sg-1",
        "wz-2",
        "wz-3",
        "wz-4",
    ]


def test_without_an_intake_stream_nothing_is_stored_and_it_says_so(
    nats_server: EmbeddedNats,
) -> None:
    with pytest.raises(nats.errors.NoRespondersError):
        run(nats_server.url, lambda nc: publish_signals(nc, BATCH))
