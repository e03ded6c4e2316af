"""A partner system on plain nats-py, exactly as CONTRACT.md tells partners to work."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

# Generous: a loaded 2-core machine may take its time.
PATIENCE = 60.0


async def until(
    condition: Callable[[], Awaitable[bool]], what: str, within: float = PATIENCE
) -> None:
    """Wait until `condition()` holds, at most `within` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.02)


class Partner:
    """Publishes signals, hears rejections, sends commands and reads events, with nats-py."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=10)
        self.rejections: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.last_sequence = 0

    async def listen_for_rejections(self) -> None:
        async def rejected(msg: Msg) -> None:
            self.rejections[msg.subject.split(".", 1)[1]].append(json.loads(msg.data))

        await self.nc.subscribe("rejected.*", cb=rejected)
        await self.nc.flush()

    async def publish(self, organisation: str, body: bytes | dict[str, Any], msg_id: str) -> int:
        """Publish on `intake.<org>.signals` with `Nats-Msg-Id`; the INTAKE sequence."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        ack = await self.js.publish(
            f"intake.{organisation}.signals", data, headers={"Nats-Msg-Id": msg_id}
        )
        assert ack.stream == "INTAKE" and not ack.duplicate
        self.last_sequence = max(self.last_sequence, ack.seq)
        return int(ack.seq)

    async def signal(self, organisation: str, body: dict[str, Any]) -> int:
        """A signal as CONTRACT.md says: `Nats-Msg-Id: <org>/<signalRef>`."""
        return await self.publish(organisation, body, f"{organisation}/{body['signalRef']}")

    async def processed(self, through: int | None = None) -> None:
        """Wait until intake has acknowledged everything up to `through` (default: all sent)."""
        through = self.last_sequence if through is None else through

        async def done() -> bool:
            try:
                info = await self.js.consumer_info("INTAKE", "coordination")
            except Exception:  # not created yet
                return False
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            return floor >= through and not info.num_ack_pending

        await until(done, f"intake processed INTAKE up to {through}")

    async def rejected(self, organisation: str, count: int) -> list[dict[str, Any]]:
        """The rejections on `rejected.<org>`, once there are `count` (and no more)."""

        async def arrived() -> bool:
            return len(self.rejections[organisation]) >= count

        await until(arrived, f"{count} rejections on rejected.{organisation}")
        await self.nc.flush()
        return list(self.rejections[organisation])

    async def request(self, organisation: str, verb: str, body: bytes | dict[str, Any]) -> Any:
        """`cmd.<org>.<verb>` request/reply; the reply's JSON."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = await self.nc.request(f"cmd.{organisation}.{verb}", data, timeout=30)
        return json.loads(reply.data)

    async def events(self, subjects: str) -> list[tuple[str, dict[str, Any]]]:
        """Every event stored under `subjects` (e.g. `events.<buurt>.>`), oldest first."""
        reader = ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=30)
        sub = await self.js.pull_subscribe(subjects, stream="EVENTS", config=reader)
        try:
            info = await sub.consumer_info()
            wanted = info.num_pending or 0
            messages: list[Msg] = []
            while len(messages) < wanted:
                messages += await sub.fetch(min(500, wanted - len(messages)), timeout=10)
            return [(m.subject, json.loads(m.data)) for m in messages]
        finally:
            await sub.unsubscribe()
