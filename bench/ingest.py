"""Intake benchmark: signals/s from publish on INTAKE to events stored.

    python -m bench.ingest            (or: make bench-ingest)

End to end: an embedded nats-server (`sync_interval: always`), the
coordination service on `events.jetstream`, and a partner publishing N signals
on `intake.<org>.signals` (each with its `Nats-Msg-Id`) as fast as JetStream
acknowledges them; the clock stops when the service has recorded the last
INTAKE position (its events and that position are written atomically).

The partner publishes as `services.partner.publish_signals` does: atomic
batches of up to 1000 signals (`--partner-batch`), one disk sync and one ack
each. Single publishes (`--partner-batch 1`) are synced one by one: with
every write synced that is 3,000-7,000 signals/s here, less than the service
drains, so the live figure would be the partner's, not the service's.

Two figures: the service draining a backlog already on INTAKE (its own rate),
and the partner publishing while the service runs (server, service and
partner then share this machine's two cores). Baseline, in the same run: the
same domain logic as plain sequential calls, one signal at a time, on
`eventsourcing.sqlite`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import tempfile
import time
from datetime import UTC, datetime, timedelta
from multiprocessing import Process, Queue
from pathlib import Path

import nats
import structlog
from eventsourcing.utils import Environment
from nats.aio.msg import Msg

from events.contract import Location, Signal
from events.contract.codec import encode
from events.jetstream import JetStreamFactory, ensure_streams
from events.jetstream.wire import encode_hpub, write_raw
from services.coordination.application import Coordination
from services.coordination.service import coordination_service
from services.embedded_nats import EmbeddedNats
from services.partner import Published, publish_signals
from services.registries import DEFAULT_CATEGORIES, Buurten, Organisations, Registries
from services.registries.organisations import Organisation, OrganisationKind
from services.settings import Settings
from services.streams import intake_stream_config

ORGANISATIONS = ("woonzorg", "stadgenoot", "wijkteam-nieuw-west", "bewonersportaal")
CATEGORIES = ("grof-vuil", "onderhoud", "overlast", "verloedering")
# Atomic batches a partner has in flight: the server stores one while it gets the next.
IN_FLIGHT = 3


def registries() -> Registries:
    organisations = Organisations(
        Organisation(
            id=org,
            kind=OrganisationKind.WIJKTEAM,
            name=org,
            token_sha256=hashlib.sha256(org.encode()).hexdigest(),
        )
        for org in ORGANISATIONS
    )
    return Registries(
        organisations=organisations,
        categories=DEFAULT_CATEGORIES,
        buurten=Buurten(),
        organisations_source="bench",
    )


def signals(count: int, places: int, buurten: int) -> list[tuple[str, Signal]]:
    """`count` signals over `places` places in `buurten` buurten: most attach to an issue."""
    now = datetime.now(UTC)
    out = []
    for n in range(count):
        place = n % places
        out.append(
            (
                ORGANISATIONS[n % len(ORGANISATIONS)],
                Signal(
                    signal_ref=f"bench-{n}",
                    buurt=f"BU0363{place % buurten:04d}",
                    category=CATEGORIES[place % len(CATEGORIES)],
                    summary=f"Signal {n} about place {place}",
                    observed_at=now - timedelta(seconds=count - n),
                    location=Location(key=f"place-{place}"),
                ),
            )
        )
    return out


def publish_all(
    url: str, count: int, places: int, buurten: int, batch_size: int, first_seq: Queue[int]
) -> None:
    """A partner process: publish `count` signals, as fast as JetStream acknowledges them.

    With `batch_size` > 1, as `services.partner.publish_signals` does: atomic
    batches of `batch_size` signals (each with its own `Nats-Msg-Id`), a few in
    flight. JetStream stores a batch with one disk sync and acknowledges it once,
    so with every write synced that is several times what single publishes reach.

    With `batch_size` 1, single publishes: windows of 256 in flight, each
    acknowledged by JetStream (stored, synced) before the next window goes out.
    A lean client: one write a window, and the acks read on one subscription,
    instead of nats-py's `js.publish` (a request, a task and a timer each),
    which took more CPU than the service did per signal.
    """
    if batch_size > 1:
        asyncio.run(_publish_batches(url, signals(count, places, buurten), batch_size, first_seq))
    else:
        asyncio.run(_publish_windows(url, signals(count, places, buurten), first_seq))


async def _publish_batches(
    url: str, batch: list[tuple[str, Signal]], batch_size: int, first_seq: Queue[int]
) -> None:
    nc = await nats.connect(url)
    in_flight: list[asyncio.Task[list[Published]]] = []
    for i in range(0, len(batch), batch_size):
        in_flight.append(asyncio.create_task(publish_signals(nc, batch[i : i + batch_size], 30)))
        if i == 0:
            first_seq.put((await in_flight[0])[0].sequence)
        if len(in_flight) >= IN_FLIGHT:
            await in_flight.pop(0)
    for task in in_flight:
        await task
    await nc.close()


async def _publish_windows(
    url: str, batch: list[tuple[str, Signal]], first_seq: Queue[int]
) -> None:
    nc = await nats.connect(url)
    inbox = nc.new_inbox()
    window = 256  # publishes in flight
    acked: dict[int, int] = {}
    complete = asyncio.Event()
    expected = 0

    async def on_ack(msg: Msg) -> None:
        ack = json.loads(msg.data) if msg.data else {}
        if "seq" not in ack or ack.get("error"):
            raise RuntimeError(f"publish not acknowledged: {msg.data!r} {msg.headers}")
        acked[int(msg.subject.rpartition(".")[2])] = int(ack["seq"])
        if len(acked) == expected:
            complete.set()

    await nc.subscribe(f"{inbox}.*", cb=on_ack)
    for i in range(0, len(batch), window):
        part = batch[i : i + window]
        acked.clear()
        complete.clear()
        expected = len(part)
        await write_raw(
            nc,
            [
                encode_hpub(
                    f"intake.{org}.signals",
                    {"Nats-Msg-Id": f"{org}/{signal.signal_ref}"},
                    encode(signal),
                    reply=f"{inbox}.{n}",
                )
                for n, (org, signal) in enumerate(part)
            ],
        )
        await asyncio.wait_for(complete.wait(), 30)
        if i == 0:
            first_seq.put(min(acked.values()))
    await nc.close()


async def end_to_end(
    workdir: Path, count: int, places: int, buurten: int, batch_size: int, *, drain: bool
) -> tuple[float, float]:
    """(signals/s, seconds publishing). With `drain`, everything is on INTAKE before
    the service starts (its own rate); else a partner publishes while it runs."""
    with EmbeddedNats(data_dir=workdir / ("drain" if drain else "live")) as server:
        env = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": server.url}
        ensure_streams(env)
        nc = await nats.connect(server.url)
        # INTAKE exactly as the service creates it (atomic batches allowed).
        await nc.jetstream().add_stream(intake_stream_config(Settings(data_dir=workdir)))
        # Partners are other processes: publishing must not share our GIL.
        first_seq: Queue[int] = Queue()
        partner = Process(
            target=publish_all,
            args=(server.url, count, places, buurten, batch_size, first_seq),
        )
        started = time.perf_counter()
        partner.start()
        if drain:
            partner.join()
            published = time.perf_counter() - started
            started = time.perf_counter()
        async with coordination_service(
            nats_url=server.url,
            eventsourcing_env=env,
            registries=registries(),
            escalation_interval=timedelta(hours=1),
        ):
            if not drain:
                await asyncio.to_thread(partner.join)
                published = time.perf_counter() - started
            await _until_tracked(env, count)
            elapsed = time.perf_counter() - started
        await nc.close()
    return count / elapsed, published


async def _until_tracked(env: dict[str, str], position: int, timeout: float = 600) -> None:
    factory = JetStreamFactory(Environment(env=env))
    recorder = factory.tracking_recorder()
    deadline = time.monotonic() + timeout
    try:
        # In a thread: a blocking call here would stall the service, whose loop this is.
        while (await asyncio.to_thread(recorder.max_tracking_id, "INTAKE") or 0) < position:
            if time.monotonic() > deadline:
                raise TimeoutError(f"INTAKE position {position} not tracked in {timeout}s")
            await asyncio.sleep(0.02)
    finally:
        factory.close()


def sequential_baseline(workdir: Path, batch: list[tuple[str, Signal]]) -> float:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(workdir / "b.db")}
    r = registries()
    app = Coordination(
        env, organisations=r.organisations, categories=r.categories, buurten=r.buurten
    )
    started = time.perf_counter()
    for pair in batch:
        app.receive([pair])
    elapsed = time.perf_counter() - started
    app.close()
    return len(batch) / elapsed


def main() -> None:
    # One log line per intake batch is right for a service, noise for a benchmark.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=20_000)
    parser.add_argument("--baseline-signals", type=int, default=3_000)
    parser.add_argument("--places", type=int, default=2_000)
    parser.add_argument("--buurten", type=int, default=200)
    parser.add_argument(
        "--partner-batch",
        type=int,
        default=1000,
        help="signals per atomic batch the partner publishes (1: single publishes)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        print(f"end to end: {args.signals} signals, {args.places} places, {args.buurten} buurten")
        drained, published = asyncio.run(
            end_to_end(
                Path(tmp), args.signals, args.places, args.buurten, args.partner_batch, drain=True
            )
        )
        print(
            f"  published in {published:.2f}s ({args.signals / published:,.0f} signals/s, the"
            f" partner alone: the most the live figure can be), then drained at"
            f" {drained:,.0f} signals/s"
        )
        live, published = asyncio.run(
            end_to_end(
                Path(tmp), args.signals, args.places, args.buurten, args.partner_batch, drain=False
            )
        )
        print(f"  published in {published:.2f}s while the service ran: {live:,.0f} signals/s")
        print(f"baseline: {args.baseline_signals} signals, one at a time on eventsourcing.sqlite")
        baseline = sequential_baseline(
            Path(tmp), signals(args.baseline_signals, args.places, args.buurten)
        )
    print("\n| path | signals/s | vs baseline |\n|---|---:|---:|")
    for name, rate in (
        ("INTAKE backlog drained by the service (sync always)", drained),
        ("partner publishing while the service runs (sync always)", live),
        ("baseline: sequential calls on eventsourcing.sqlite", baseline),
    ):
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f}x |")
    print("\ngoals: >= 8,000 signals/s and >= 2.5x the baseline")


if __name__ == "__main__":
    main()
