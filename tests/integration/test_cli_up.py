"""`buurtbeeld up` as an operator runs it: a real process, real signals, real nats-servers."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from services.embedded_nats import EmbeddedNats, free_port
from tests.integration.buurtbeeld_process import (
    BuurtbeeldUp,
    process_exists,
    something_listens_on,
)


@dataclass
class Streams:
    intake: StreamConfig
    events: StreamConfig


async def stream_configs(url: str) -> Streams:
    nc = await nats.connect(url)
    try:
        jsm = nc.jsm()
        intake = await jsm.stream_info("INTAKE")
        events = await jsm.stream_info("EVENTS")
        return Streams(intake=intake.config, events=events.config)
    finally:
        await nc.close()


async def publish_signal(url: str, signal_ref: str) -> tuple[int, bool]:
    """Publish a signal as woonzorg twice: its stream sequence, and if the repeat was dropped."""
    body = json.dumps({"signalRef": signal_ref, "buurt": "BU0363FF03"}).encode()
    headers = {"Nats-Msg-Id": f"woonzorg/{signal_ref}"}
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        first = await js.publish("intake.woonzorg.signals", body, headers=headers)
        again = await js.publish("intake.woonzorg.signals", body, headers=headers)
        return first.seq, bool(again.duplicate)
    finally:
        await nc.close()


async def stored_intake(url: str, seq: int) -> tuple[int, bytes, float]:
    """How many messages INTAKE holds, the body at `seq`, and its max age."""
    nc = await nats.connect(url)
    try:
        jsm = nc.jsm()
        info = await jsm.stream_info("INTAKE")
        message = await jsm.get_msg("INTAKE", seq)
        return info.state.messages, message.data or b"", info.config.max_age or 0.0
    finally:
        await nc.close()


def test_up_runs_nats_with_both_streams_stops_on_sigterm_and_keeps_the_data(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]
) -> None:
    # Start on an empty data folder and wait until it says it is ready.
    first = start_up(up_env)
    ready = first.wait_for("buurtbeeld.ready")
    url = ready["nats_url"]
    assert url == f"nats://127.0.0.1:{up_env['BUURTBEELD_NATS_PORT']}"
    assert ready["data_dir"] == up_env["BUURTBEELD_DATA"]
    nats_pid = first.embedded_nats_pid()
    assert nats_pid is not None and process_exists(nats_pid)
    assert Path(up_env["BUURTBEELD_DATA"], "nats", "nats-server.log").exists()

    # The demo organisations were created, and their tokens shown, this once.
    organisations_file = Path(up_env["BUURTBEELD_DATA"], "organisations.toml")
    registries = first.wait_for("registries.loaded", within=0)
    assert registries["organisations_file"] == str(organisations_file)
    assert registries["buurten_source"] == "shipped demo list"
    demo = first.wait_for("demo.tokens", within=0)
    assert len(demo["tokens"]) == registries["organisations"]
    assert demo["tokens"]["woonzorg"] not in organisations_file.read_text()

    # INTAKE: file storage, bounded retention, two-minute dedup window, old ones go first.
    streams = asyncio.run(stream_configs(url))
    assert streams.intake.subjects == ["intake.*.signals"]
    assert streams.intake.storage == StorageType.FILE
    assert streams.intake.num_replicas == 1
    assert streams.intake.max_age == 12 * 3600
    assert streams.intake.duplicate_window == 120
    assert streams.intake.discard == DiscardPolicy.OLD

    # EVENTS: the immutable system of record.
    assert streams.events.deny_delete
    assert streams.events.deny_purge
    assert streams.events.allow_atomic
    assert streams.events.allow_direct
    assert not streams.events.max_age

    # A partner publishes a signal; the same one again is recognised as a duplicate.
    seq, second_was_duplicate = asyncio.run(publish_signal(url, "wz-2026-000123"))
    assert second_was_duplicate

    # SIGTERM stops everything: exit code 0, the nats-server is gone, the port is free.
    assert first.stop(signal.SIGTERM) == 0
    assert "buurtbeeld.stopped" in first.events()
    # The coordination kept its open issues for the next start.
    kept = first.wait_for("coordination.snapshot_kept", within=0)
    assert kept["open_issues"] > 0
    assert not process_exists(nats_pid)
    assert not something_listens_on(int(up_env["BUURTBEELD_NATS_PORT"]))

    # Up again on the same data folder, with a longer INTAKE retention.
    second = start_up({**up_env, "BUURTBEELD_INTAKE_MAX_AGE": "1d"})
    second.wait_for("buurtbeeld.ready")
    # It started from them: only what came after was read from the log.
    rebuilt = second.wait_for("coordination.rebuilt", within=0)
    assert rebuilt["from_snapshot_at"] == kept["position"]
    assert rebuilt["open_issues"] == kept["open_issues"]
    assert rebuilt["events_read"] == 0

    # The signal is still there, once (after the demo scenario's signals, seeded on the
    # first start); the retention was updated.
    messages, body, max_age = asyncio.run(stored_intake(url, seq))
    assert messages == seq
    assert json.loads(body)["signalRef"] == "wz-2026-000123"
    assert max_age == 24 * 3600
    assert second.stop(signal.SIGTERM) == 0
    # The demo organisations are still there; their tokens are not shown again.
    assert "registries.loaded" in second.events()
    assert "demo.tokens" not in second.events()


def test_up_stops_cleanly_on_sigint(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]
) -> None:
    # Ready, then Ctrl-C.
    up = start_up(up_env)
    up.wait_for("buurtbeeld.ready")
    nats_pid = up.embedded_nats_pid()
    assert nats_pid is not None

    assert up.stop(signal.SIGINT) == 0

    # Stopped in order, nothing left running.
    stopping = up.wait_for("buurtbeeld.stopping", within=0)
    assert stopping["signal"] == "SIGINT"
    assert "buurtbeeld.stopped" in up.events()
    assert not process_exists(nats_pid)


def test_with_nats_url_no_embedded_server_is_started(
    up_env: dict[str, str],
    start_up: Callable[[dict[str, str]], BuurtbeeldUp],
    nats_server: EmbeddedNats,
) -> None:
    # Point it at a server that is already running.
    up = start_up({**up_env, "NATS_URL": nats_server.url})
    ready = up.wait_for("buurtbeeld.ready")

    # It uses that server, and starts none of its own.
    assert ready["nats_url"] == nats_server.url
    assert "nats.embedded.started" not in up.events()
    assert not Path(up_env["BUURTBEELD_DATA"], "nats").exists()
    assert not something_listens_on(int(up_env["BUURTBEELD_NATS_PORT"]))
    streams = asyncio.run(stream_configs(nats_server.url))
    assert streams.intake.subjects == ["intake.*.signals"]
    assert streams.events.deny_delete

    # Stopping it leaves the external server running.
    assert up.stop(signal.SIGTERM) == 0
    assert nats_server.process is not None and nats_server.process.poll() is None


def test_a_bad_setting_is_refused_before_anything_starts(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]
) -> None:
    up = start_up({**up_env, "NATS_REPLICAS": "seven"})

    assert up.wait() == 2
    assert "NATS_REPLICAS" in "".join(up.output)
    assert not Path(up_env["BUURTBEELD_DATA"]).exists()


def test_a_missing_organisations_file_that_was_named_is_refused_before_nats_starts(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp], tmp_path: Path
) -> None:
    missing = tmp_path / "partners.toml"
    up = start_up({**up_env, "BUURTBEELD_ORGANISATIONS": str(missing)})

    assert up.wait() == 2
    failed = up.wait_for("buurtbeeld.failed", within=0)
    assert str(missing) in failed["error"]
    assert "BUURTBEELD_ORGANISATIONS" in failed["error"]
    # No demo file instead, and nothing started.
    assert not missing.exists()
    assert not Path(up_env["BUURTBEELD_DATA"], "organisations.toml").exists()
    assert "nats.embedded.started" not in up.events()


def test_a_taken_nats_port_fails_the_start_with_exit_code_1(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(up_env["BUURTBEELD_NATS_PORT"])))
        squatter.listen()

        up = start_up(up_env)

        assert up.wait() == 1
    failed = up.wait_for("buurtbeeld.failed", within=0)
    assert "BUURTBEELD_NATS_PORT" in failed["error"]
    assert "buurtbeeld.ready" not in up.events()


def test_a_stop_while_nats_is_unreachable_ends_the_start(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]
) -> None:
    # NATS_URL names a server that is not there (yet): it keeps trying.
    up = start_up({**up_env, "NATS_URL": f"nats://127.0.0.1:{free_port()}"})
    up.wait_for("nats.error")

    # An operator gives up: it stops without ever having been ready.
    assert up.stop(signal.SIGTERM) == 0
    assert "buurtbeeld.ready" not in up.events()
    assert up.events()[-1] == "buurtbeeld.stopped"


def test_with_another_persistence_module_no_events_stream_is_created(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]
) -> None:
    # The eventsourcing library's SQLite store instead of JetStream.
    up = start_up({**up_env, "PERSISTENCE_MODULE": "eventsourcing.sqlite"})
    ready = up.wait_for("buurtbeeld.ready")

    # NATS still carries INTAKE, but the events go to SQLite in the data folder.
    assert ready["streams"] == ["INTAKE"]
    event_store = up.wait_for("event_store.ready", within=0)
    assert event_store["where"] == str(Path(up_env["BUURTBEELD_DATA"], "events.sqlite"))
    assert up.stop(signal.SIGTERM) == 0
