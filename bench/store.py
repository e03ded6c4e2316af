"""Event store benchmark: one eventsourcing Application workload on three stores.

    python -m bench.store            (or: make bench-store)

Each writer thread opens aggregates, then loads, changes and saves them in
turn (one command = one load + change + save, or one open). The same workload
runs on `events.jetstream` (embedded nats-server, `sync_interval: always`),
`eventsourcing.sqlite` (a file, WAL) and `eventsourcing.postgres`
(127.0.0.1:5432), in one run, and prints commands/s, the ratios, and the
single-writer latency (p50/p99).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from services.embedded_nats import EmbeddedNats


class Tally(Aggregate):
    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    @event("Added")
    def add(self, amount: int) -> None:
        self.count += amount


class Tallies(Application[UUID]):
    """The workload: open a tally; load, change and save one."""

    def open(self, name: str) -> UUID:
        tally = Tally(name)
        self.save(tally)
        return tally.id

    def add(self, tally_id: UUID, amount: int) -> None:
        tally: Tally = self.repository.get(tally_id)
        tally.add(amount)
        self.save(tally)


@dataclass
class Result:
    store: str
    commands: int
    seconds: float
    latencies_ms: list[float]
    durability: str

    @property
    def per_second(self) -> float:
        return self.commands / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def writer(app: Tallies, aggregates: int, changes: int) -> int:
    ids = [app.open(f"tally-{i}") for i in range(aggregates)]
    for n in range(changes):
        app.add(ids[n % aggregates], 1)
    return aggregates + changes


def single_writer_latencies(app: Tallies, aggregates: int, commands: int) -> list[float]:
    """Latency of load+change+save, one writer, on aggregates as long as the writers' ones."""
    ids = [app.open(f"latency-{i}") for i in range(aggregates)]
    latencies = []
    for n in range(commands):
        started = time.perf_counter()
        app.add(ids[n % aggregates], 1)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def measure(
    store: str, env: dict[str, str], durability: str, args: argparse.Namespace
) -> Result:
    app = Tallies(env=env)
    try:
        writer(app, 2, 20)  # warm up connections and caches
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.writers) as pool:
            futures = [
                pool.submit(writer, app, args.aggregates, args.changes)
                for _ in range(args.writers)
            ]
            commands = sum(f.result() for f in futures)
        seconds = time.perf_counter() - started
        latencies = single_writer_latencies(app, args.aggregates, args.latency_commands)
    finally:
        app.close()
    return Result(store, commands, seconds, latencies, durability)


@contextmanager
def jetstream_store(workdir: Path) -> Iterator[tuple[dict[str, str], str]]:
    with EmbeddedNats(data_dir=workdir / "nats") as server:
        env = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": server.url}
        yield env, "nats-server, JetStream file store, sync_interval: always"


@contextmanager
def sqlite_store(workdir: Path) -> Iterator[tuple[dict[str, str], str]]:
    import sqlite3

    path = workdir / "events.sqlite"
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    with sqlite3.connect(":memory:") as probe:
        level = probe.execute("PRAGMA synchronous").fetchone()[0]
    yield env, f"file, WAL, PRAGMA synchronous={level} (2=FULL)"


@contextmanager
def postgres_store(workdir: Path) -> Iterator[tuple[dict[str, str], str]]:
    import psycopg

    conninfo = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS tallies_events")
        fsync = conn.execute("SHOW fsync").fetchone()
        commit = conn.execute("SHOW synchronous_commit").fetchone()
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "test",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_POOL_SIZE": "10",
    }
    yield env, f"PostgreSQL, fsync={fsync[0] if fsync else '?'}, " + (
        f"synchronous_commit={commit[0] if commit else '?'}"
    )


STORES: dict[str, Callable[[Path], Any]] = {
    "events.jetstream": jetstream_store,
    "eventsourcing.sqlite": sqlite_store,
    "eventsourcing.postgres": postgres_store,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--aggregates", type=int, default=10, help="opened per writer")
    parser.add_argument("--changes", type=int, default=300, help="load+change+save per writer")
    parser.add_argument("--latency-commands", type=int, default=300)
    parser.add_argument("--stores", nargs="*", default=list(STORES))
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        for name in args.stores:
            print(f"running {name} ...", flush=True)
            workdir = Path(tmp) / name
            workdir.mkdir(parents=True)
            with STORES[name](workdir) as (env, durability):
                results.append(measure(name, env, durability, args))
    print_report(results, args)


def print_report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.writers} writer threads, each: open {args.aggregates} aggregates, then "
        f"{args.changes} x (load, change, save); single-writer latency over "
        f"{args.latency_commands} load+change+save commands. Python {sys.version.split()[0]}."
    )
    print("\n| store | commands/s | single-writer p50 ms | p99 ms | durability |")
    print("|---|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r.store} | {r.per_second:,.0f} | {statistics.median(r.latencies_ms):.2f} | "
            f"{r.percentile(99):.2f} | {r.durability} |"
        )
    by_store = {r.store: r for r in results}
    ours = by_store.get("events.jetstream")
    if ours:
        for baseline, goal in (("eventsourcing.sqlite", 1.5), ("eventsourcing.postgres", 2.5)):
            if baseline in by_store:
                ratio = ours.per_second / by_store[baseline].per_second
                verdict = "meets" if ratio >= goal else "MISSES"
                print(f"\nevents.jetstream / {baseline}: {ratio:.2f}x ({verdict} goal {goal}x)")


if __name__ == "__main__":
    main()
