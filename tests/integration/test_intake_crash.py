"""kill -9 in the middle of ingesting 20,000 signals: after a restart, each counted exactly once.

A real `buurtbeeld up` process with the deployment's own organisations file (no
demo data) and the shipped demo buurten. A partner in another process publishes
20,000 signals with plain nats-py, as fast as JetStream acknowledges them. Once
intake is a good way in, the `buurtbeeld up` Python process is killed with
SIGKILL; its orphaned embedded nats-server is stopped gracefully, and
`buurtbeeld up` is started again on the same data folder and port. A partner
still publishing then reconnects and carries on (usually it has published
everything before the kill: publishing is faster than intake). When intake
has tracked everything, the EVENTS stream must hold one IssueOpened or
SignalAttached per signal, and one receipt: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig

from bench.ingest import _until_tracked
from events.contract import Location, Signal
from events.contract.codec import encode
from services.registries import token_sha256
from services.settings import Settings
from tests.integration.buurtbeeld_process import (
    BuurtbeeldUp,
    process_exists,
    something_listens_on,
)

SIGNALS = 20_000
KILL_AFTER = 5_000  # INTAKE messages acknowledged by the service before the kill
PLACES = 2_000  # most signals attach to an issue someone else's signal opened
ORGANISATIONS = ("woonzorg", "stadgenoot", "wijkteam-nieuw-west", "bewonersportaal")
KINDS = ("woningcorporatie", "woningcorporatie", "wijkteam", "bewoners")
CATEGORIES = ("grof-vuil", "onderhoud", "overlast", "verloedering")
# The shipped demo list, enforced when BUURTBEELD_BUURTEN is unset.
BUURTEN = (
    "BU0363FB01",
    "BU0363FB02",
    "BU0363FC01",
    "BU0363FD01",
    "BU0363FD02",
    "BU0363FE01",
    "BU0363FF03",
    "BU0363FG01",
    "BU0363FG02",
    "BU0363FH01",
    "BU0363FH02",
    "BU0363FJ01",
    "BU0363FL01",
    "BU0363FM01",
)
# Generous, for a loaded 2-core machine; the whole test stays well under 4 minutes.
PROGRESS_WITHIN = 90.0
PUBLISHER_WITHIN = 120.0
TRACKED_WITHIN = 150.0


def organisations_file(path: Path) -> Path:
    path.write_text(
        "".join(
            f'[[organisation]]\nid = "{org}"\nkind = "{kind}"\nname = "{org.title()}"\n'
            f'token_sha256 = "{token_sha256(org + "-token")}"\n\n'
            for org, kind in zip(ORGANISATIONS, KINDS, strict=True)
        )
    )
    return path


def signals() -> list[tuple[str, Signal]]:
    """`SIGNALS` signals over `PLACES` places in the demo buurten, from four organisations."""
    now = datetime.now(UTC)
    out = []
    for n in range(SIGNALS):
        place = n % PLACES
        out.append(
            (
                ORGANISATIONS[n % len(ORGANISATIONS)],
                Signal(
                    signal_ref=f"crash-{n}",
                    buurt=BUURTEN[place % len(BUURTEN)],
                    category=CATEGORIES[place % len(CATEGORIES)],
                    summary=f"Signal {n} about place {place}",
                    observed_at=now - timedelta(seconds=SIGNALS - n),
                    location=Location(key=f"place-{place}"),
                ),
            )
        )
    return out


def publish_all(url: str, last_sequence: Queue[int]) -> None:
    """A partner process: publish every signal, riding out the server going away and back.

    A window whose acks do not all come is published again: the same
    `Nats-Msg-Id` makes a repeat a duplicate, and intake would ignore it anyway.
    """

    async def publish() -> None:
        async def quiet(error: Exception) -> None:
            """The server being away for a while is expected here."""

        nc: NATS = await nats.connect(
            url,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            connect_timeout=5,
            error_cb=quiet,
        )
        js = nc.jetstream(timeout=5)
        batch = signals()
        window = 256
        last = 0
        for i in range(0, len(batch), window):
            while True:
                try:
                    acks = await asyncio.gather(
                        *(
                            js.publish(
                                f"intake.{org}.signals",
                                encode(s),
                                headers={"Nats-Msg-Id": f"{org}/{s.signal_ref}"},
                            )
                            for org, s in batch[i : i + window]
                        )
                    )
                    break
                except Exception:  # the server is down: wait for the reconnect, again
                    await asyncio.sleep(0.5)
            last = max(last, *(ack.seq for ack in acks))
        await nc.close()
        last_sequence.put(last)

    asyncio.run(publish())


async def intake_acked(url: str) -> int:
    """The INTAKE consumer's ack floor: how far the service has got."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info("INTAKE", "coordination")
        return info.ack_floor.stream_seq if info.ack_floor else 0
    except Exception:  # not created yet
        return 0
    finally:
        await nc.close()


def wait_for_progress(url: str, at_least: int) -> int:
    deadline = time.monotonic() + PROGRESS_WITHIN
    while (acked := asyncio.run(intake_acked(url))) < at_least:
        assert time.monotonic() < deadline, f"intake not past {at_least} in {PROGRESS_WITHIN}s"
        time.sleep(0.05)
    return acked


def stop_gracefully(pid: int) -> None:
    """SIGTERM the orphaned nats-server and wait until it is gone (or only a zombie)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while process_exists(pid) and not _zombie(pid):
        assert time.monotonic() < deadline, f"nats-server {pid} did not stop on SIGTERM"
        time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


async def all_events(url: str) -> list[dict[str, Any]]:
    """Every event on the EVENTS stream, oldest first, with plain nats-py."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=30)
        reader = ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=60)
        sub = await js.pull_subscribe("events.>", stream="EVENTS", config=reader)
        wanted = (await sub.consumer_info()).num_pending or 0
        bodies: list[dict[str, Any]] = []
        while len(bodies) < wanted:
            messages = await sub.fetch(min(1_000, wanted - len(bodies)), timeout=30)
            bodies += [json.loads(m.data) for m in messages]
        await sub.unsubscribe()
        return bodies
    finally:
        await nc.close()


def test_kill_9_mid_ingest_then_restart_accounts_for_every_signal_exactly_once(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp], tmp_path: Path
) -> None:
    env = {
        **up_env,
        "BUURTBEELD_ORGANISATIONS": str(organisations_file(tmp_path / "organisations.toml")),
    }
    first = start_up(env)
    url = first.wait_for("buurtbeeld.ready")["nats_url"]
    nats_pid = first.embedded_nats_pid()
    assert nats_pid is not None

    # A partner starts publishing 20,000 signals from its own process.
    spawn = multiprocessing.get_context("spawn")
    last_sequence: Queue[int] = spawn.Queue()
    partner = spawn.Process(target=publish_all, args=(url, last_sequence), daemon=True)
    partner.start()
    try:
        # A good way into intake, the service process dies without a word.
        acked = wait_for_progress(url, KILL_AFTER)
        first.process.send_signal(signal.SIGKILL)
        assert first.wait() == -signal.SIGKILL
        assert acked < SIGNALS, "intake was done before the kill: nothing was interrupted"
        # Its embedded nats-server lives on as an orphan; it is stopped properly.
        assert process_exists(nats_pid)
        stop_gracefully(nats_pid)
        port = int(env["BUURTBEELD_NATS_PORT"])
        deadline = time.monotonic() + 30
        while something_listens_on(port):
            assert time.monotonic() < deadline, "the old nats-server still listens"
            time.sleep(0.05)

        # The operator starts it again, on the same data folder and port.
        second = start_up(env)
        assert second.wait_for("buurtbeeld.ready")["nats_url"] == url

        # The partner, if it was not done yet, reconnects and publishes the rest.
        partner.join(PUBLISHER_WITHIN)
        assert partner.exitcode == 0, "the partner did not finish publishing"
        last = last_sequence.get(timeout=10)
        assert last >= SIGNALS

        # Intake gets through everything, the interrupted batch included.
        store = Settings(data_dir=Path(env["BUURTBEELD_DATA"])).eventsourcing_env(url)
        asyncio.run(_until_tracked(store, last, timeout=TRACKED_WITHIN))

        # Every signal once: an issue opened or attached to, and one receipt.
        events = asyncio.run(all_events(url))
        kinds = Counter(body["type"] for body in events)
        on_issues = Counter(
            (body["organisation"], body["signal"]["signalRef"])
            for body in events
            if body["type"] in ("IssueOpened", "SignalAttached")
        )
        receipts = Counter(
            (body["organisation"], body["signalRef"])
            for body in events
            if body["type"] == "SignalReceived"
        )
        expected = {(org, s.signal_ref) for org, s in signals()}
        assert set(on_issues) == expected
        assert [pair for pair, n in on_issues.items() if n > 1] == []
        assert kinds["IssueOpened"] + kinds["SignalAttached"] == SIGNALS
        assert set(receipts) == expected and kinds["SignalReceived"] == SIGNALS
        assert max(receipts.values()) == 1
        assert kinds["IssueOpened"] >= PLACES  # at least one issue per place, most attached
    finally:
        if partner.is_alive():
            partner.kill()
        partner.join(10)
