"""`buurtbeeld signal`: publishing a signal exactly as CONTRACT.md tells partners to."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nats
from nats.aio.client import Client as NATS

from services.embedded_nats import EmbeddedNats
from services.settings import Settings
from services.streams import ensure_intake_stream
from tests.integration.buurtbeeld_process import REPO_ROOT, BuurtbeeldUp

SIGNAL = [
    "--org",
    "woonzorg",
    "--buurt",
    "BU0363FF03",
    "--category",
    "grof-vuil",
    "--summary",
    "Grof vuil naast de containers",
    "--ref",
    "wz-2026-000123",
    "--location-key",
    "louweshoek-parkeerplaats",
    "--address",
    "Louweshoek 1",
    "--observed-at",
    "2026-11-20T09:30:00+01:00",
]


def run_signal(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "signal", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def with_nats(url: str, work: Callable[[NATS], object]) -> object:
    nc = await nats.connect(url)
    try:
        return await work(nc)  # type: ignore[misc]
    finally:
        await nc.close()


def test_a_signal_is_published_on_intake_with_its_message_id(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    env = {**os.environ, "NATS_URL": nats_server.url, "BUURTBEELD_DATA": str(tmp_path)}
    settings = Settings.from_environ(env)
    asyncio.run(with_nats(nats_server.url, lambda nc: ensure_intake_stream(nc, settings)))

    # The partner publishes once ...
    first = run_signal(env, *SIGNAL)
    assert first.returncode == 0, first.stderr
    stored = json.loads(first.stdout)
    assert stored["stream"] == "INTAKE" and stored["duplicate"] is False

    # ... and what INTAKE holds is the contract's body under the contract's subject and id.
    message = asyncio.run(
        with_nats(nats_server.url, lambda nc: nc.jsm().get_msg("INTAKE", stored["sequence"]))
    )
    assert message.subject == "intake.woonzorg.signals"  # type: ignore[attr-defined]
    assert message.headers["Nats-Msg-Id"] == "woonzorg/wz-2026-000123"  # type: ignore[attr-defined]
    body = json.loads(message.data)  # type: ignore[attr-defined]
    assert body == {
        "signalRef": "wz-2026-000123",
        "buurt": "BU0363FF03",
        "category": "grof-vuil",
        "summary": "Grof vuil naast de containers",
        "observedAt": "2026-11-20T09:30:00+01:00",
        "location": {"key": "louweshoek-parkeerplaats", "address": "Louweshoek 1"},
    }

    # Publishing the same signal again changes nothing.
    again = run_signal(env, *SIGNAL)
    assert json.loads(again.stdout)["duplicate"] is True


def test_an_invalid_signal_is_refused_before_it_is_sent(nats_server: EmbeddedNats) -> None:
    env = {**os.environ, "NATS_URL": nats_server.url}
    args = [*SIGNAL]
    args[args.index("BU0363FF03")] = "0363FF03"
    refused = run_signal(env, *args)
    assert refused.returncode == 2
    assert "buurt" in refused.stderr


def test_without_nats_url_it_finds_the_running_up(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]
) -> None:
    up = start_up(up_env)
    up.wait_for("buurtbeeld.ready")
    published = run_signal(up_env, *SIGNAL)
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["stream"] == "INTAKE"


def test_without_any_nats_it_says_how_to_get_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    env["BUURTBEELD_DATA"] = str(tmp_path)
    refused = run_signal(env, *SIGNAL)
    assert refused.returncode == 1
    assert "buurtbeeld up" in refused.stderr
