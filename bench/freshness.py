"""Freshness benchmark: from a signal published to its effect visible in the HTTP picture.

    python -m bench.freshness            (or: make bench-freshness)

The real `buurtbeeld up` (`bench.system`, a fresh data dir, the bench
organisations and 200 buurten). A partner process publishes 1,000 signals/s
on `intake.<org>.signals` for 30 s, as CONTRACT.md says (`Nats-Msg-Id:
<org>/<signalRef>`), paced every 10 ms. One in ten goes to a probe place (ten
buurten, one place each), the rest anywhere. Meanwhile one client per probe
buurt polls `GET /api/v1/buurten/{buurt}/issues` back to back: the k-th signal
to a probe place is visible once that place's issue shows `signalCount >= k`,
at the moment that answer arrived. Latency = that moment - the moment before
its publish. The clients' own round trip is printed beside it: the
measurement's resolution, and the baseline a poll could not beat.

Then, per stage, where the probes' time went (`bench.freshness_stages`): to
INTAKE, to intake's fetch, to EVENTS, to the projection's commit, to the HTTP
answer, each from the moment the system itself recorded (stream times, the
intake log, the view position).

Goal: p99 <= 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import Process, Queue
from pathlib import Path

import nats

from bench.eventlog import ORGS
from bench.freshness_stages import (
    CommitWatcher,
    ProbeTimes,
    batch_of,
    batch_summary,
    event_times,
    gc_summary,
    intake_times,
    stage_table,
)
from bench.query import Connection
from bench.system import Buurtbeeld

PROBES = 10
READER = "wijkteam-nieuw-west"
CATEGORIES = ("grof-vuil", "onderhoud", "verloedering", "overlast")
GOAL_P99_MS = 250.0


def probe_buurt(n: int) -> str:
    return f"BU0363{n:04d}"


# (probe, k, published at, signal number, INTAKE sequence)
Probe = tuple[int, int, float, int, int]
Published = tuple[list[Probe], int, float]


def publish(url: str, rate: int, seconds: float, out: Queue[Published]) -> None:
    """The partner: `rate` signals/s for `seconds`. Puts on `out` the probes
    (`Probe`), how many signals it published and in how long."""

    async def run() -> Published:
        nc = await nats.connect(url)
        js = nc.jetstream(timeout=30)
        probes: list[Probe] = []
        sequences: dict[int, int] = {}  # signal number -> INTAKE sequence
        counts = [0] * PROBES
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        started = time.monotonic()
        pending: list[asyncio.Future[object]] = []
        n = 0
        while time.monotonic() - started < seconds:
            for _ in range(per_tick):
                n += 1
                org = ORGS[n % len(ORGS)]
                if n % 10 == 0:
                    probe = (n // 10) % PROBES
                    buurt, place, category = probe_buurt(probe), f"probe-{probe}", "grof-vuil"
                else:
                    probe = -1
                    buurt = f"BU0363{(n * 7919) % 200:04d}"
                    place = f"load-{n % 20_000}"
                    category = CATEGORIES[n % len(CATEGORIES)]
                body = json.dumps(
                    {
                        "signalRef": f"fresh-{n}",
                        "buurt": buurt,
                        "category": category,
                        "summary": f"Freshness signal {n}",
                        "observedAt": "2026-11-20T09:30:00+01:00",
                        "location": {"key": place, "address": "Louweshoek 1"},
                    }
                ).encode()
                at = time.time()
                ack = asyncio.ensure_future(
                    js.publish(
                        f"intake.{org}.signals",
                        body,
                        headers={"Nats-Msg-Id": f"{org}/fresh-{n}"},
                    )
                )
                pending.append(ack)
                if probe >= 0:
                    counts[probe] += 1
                    probes.append((probe, counts[probe], at, n, 0))
                    ack.add_done_callback(
                        lambda done, n=n: sequences.__setitem__(n, done.result().seq)
                    )
            next_tick = started + tick * (n // per_tick)
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            if len(pending) > 2000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        elapsed = time.monotonic() - started
        await nc.close()
        return [(p, k, at, i, sequences.get(i, 0)) for p, k, at, i, _ in probes], n, elapsed

    out.put(asyncio.run(run()))


@dataclass
class Poll:
    probe: int
    answered_at: float
    count: int
    round_trip_ms: float


async def poll(port: int, probe: int, until: float, polls: list[Poll]) -> None:
    """Ask the probe buurt's picture back to back; note the probe place's signal count."""
    connection = await Connection.open(port)
    token = f"bench-{READER}"
    path = f"/api/v1/buurten/{probe_buurt(probe)}/issues"
    try:
        while time.time() < until:
            sent = time.perf_counter()
            status, body, gzipped = await connection.get(path, token)
            answered = time.time()
            if status != 200:
                raise RuntimeError(f"{status}: {body[:300]!r}")
            count = 0
            for issue in json.loads(gzip.decompress(body) if gzipped else body)["issues"]:
                if (issue.get("location") or {}).get("key") == f"probe-{probe}":
                    count = max(count, issue["signalCount"])
            polls.append(Poll(probe, answered, count, (time.perf_counter() - sent) * 1000))
    finally:
        connection.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="signals per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-freshness-") as tmp,
        Buurtbeeld(Path(tmp) / "data") as system,
    ):
        system.wait_for("http.ready", within=300)
        print(f"publishing {args.rate} signals/s for {args.seconds:g}s ...", file=sys.stderr)
        out: Queue[Published] = Queue()
        partner = Process(target=publish, args=(system.nats_url, args.rate, args.seconds, out))
        polls: list[Poll] = []
        until = time.time() + args.seconds + 5
        watcher = CommitWatcher(system.data_dir / "views.sqlite")
        watcher.start()
        partner.start()

        async def pollers() -> None:
            await asyncio.gather(*(poll(system.http_port, p, until, polls) for p in range(PROBES)))

        asyncio.run(pollers())
        watcher.stop()
        probes, published, publishing = out.get()
        partner.join()
        system.drain_log()
        stored_in_intake = asyncio.run(intake_times(system.nats_url, (p[4] for p in probes)))
        probe_subjects = {f"events.{probe_buurt(p)}" for p in range(PROBES)}
        stored_in_events = asyncio.run(
            event_times(system.nats_url, lambda s: s.rpartition(".issue.")[0] in probe_subjects)
        )
        records = list(system.records)
    latencies, missing = [], 0
    by_probe: dict[int, list[Poll]] = {}
    for p in polls:
        by_probe.setdefault(p.probe, []).append(p)
    batch = batch_of(records)
    timed: list[ProbeTimes] = []
    for probe, k, published_at, number, sequence in probes:
        seen = next((p.answered_at for p in by_probe[probe] if p.count >= k), None)
        if seen is None:
            missing += 1
        else:
            latencies.append((seen - published_at) * 1000)
        times = ProbeTimes(published_at, intake_stored=stored_in_intake.get(sequence), visible=seen)
        fetched = batch(sequence)
        times.fetched = fetched.get("received_at") if fetched else None
        stored = stored_in_events.get(f"fresh-{number}")
        if stored is not None:
            times.events_stored = stored[0]
            times.committed = watcher.committed_at(stored[1])
        timed.append(times)
    round_trips = [p.round_trip_ms for p in polls]
    print(
        f"\n{published:,} signals published on INTAKE in {publishing:.1f}s "
        f"({published / publishing:,.0f}/s) by one partner process; "
        f"{len(probes):,} probe signals measured ({missing} never seen); "
        f"{PROBES} clients polling their buurt's picture back to back.\n"
    )
    print("| measured | count | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for what, values in (
        ("signal published -> visible in GET …/issues", latencies),
        ("the polling client's round trip (resolution)", round_trips),
    ):
        print(
            f"| {what} | {len(values):,} | {percentile(values, 50):.1f} | "
            f"{percentile(values, 90):.1f} | {percentile(values, 99):.1f} | {max(values):.1f} |"
        )
    print()
    print(stage_table(timed))
    print()
    since = min((p[2] for p in probes), default=0.0)
    print(batch_summary(records, since))
    print(gc_summary(records, since))
    p99 = percentile(latencies, 99)
    verdict = "meets" if p99 <= GOAL_P99_MS and not missing else "MISSES"
    print(f"\nfreshness p99 {p99:.1f} ms ({verdict} goal: p99 <= {GOAL_P99_MS:g} ms)")


if __name__ == "__main__":
    main()
