"""The first `buurtbeeld up` with demo organisations seeds the demo scenario (CONTRACT.md)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

import httpx
import nats
from nats.js.api import DeliverPolicy

from services.demo import DEMO_BUURT
from tests.integration.buurtbeeld_process import BuurtbeeldUp


async def issue_event_types(url: str) -> list[str]:
    """The types of every event under events.<demo buurt>.issue.>, as a partner reads them."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(
            f"events.{DEMO_BUURT}.issue.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        types = []
        while True:
            try:
                msg = await sub.next_msg(timeout=2)
            except nats.errors.TimeoutError:
                return types
            types.append(json.loads(msg.data)["type"])
    finally:
        await nc.close()


def test_the_first_start_seeds_the_demo_and_a_restart_does_not(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]
) -> None:
    # First start: demo organisations are made, and the scenario is published.
    first = start_up(up_env)
    seeded = first.wait_for("demo.seeded")
    ready = first.wait_for("buurtbeeld.ready")
    assert (seeded["signals"], seeded["issues"], seeded["refused"]) == (9, 6, 0)

    # Partners see it under the demo buurt: six issues, three signals attached, claims.
    types = asyncio.run(issue_event_types(ready["nats_url"]))
    assert types.count("IssueOpened") == 6
    assert types.count("SignalAttached") == 3
    assert "HandoverAccepted" in types and "IssueResolved" in types

    # It says where the dashboard is and whose token to log in with; the token works.
    login = first.wait_for("demo.log_in")
    assert login["dashboard_url"] == ready["dashboard_url"]
    assert login["organisation"] == "wijkteam-nieuw-west"
    picture = httpx.get(
        f"{ready['http_url']}/api/v1/buurten/{DEMO_BUURT}/issues",
        headers={"Authorization": f"Bearer {login['token']}"},
        timeout=10,
    )
    assert picture.status_code == 200
    assert first.stop(signal.SIGTERM) == 0

    # A restart on the same data seeds nothing again.
    second = start_up(up_env)
    again = second.wait_for("buurtbeeld.ready")
    assert "demo.seeded" not in second.events()
    assert "demo.log_in" not in second.events()  # the token is not kept: shown once
    assert asyncio.run(issue_event_types(again["nats_url"])) == types
