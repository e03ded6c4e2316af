"""Replay benchmark: rebuilding the picture from 1,000,000 issue events.

    python -m bench.replay            (or: make bench-replay)

The log (`bench.eventlog`: realistic lifecycles across 200 buurten, receipts
interleaved as the coordination writes them) is generated once into
`var/bench/` and reused. An embedded nats-server (`sync_interval: always`)
serves it; in the same run:

- baseline: a plain nats-py ordered consumer on `events.*.issue.*` of EVENTS,
  reading every issue event as fast as it can (touching `msg.data`), before and
  after the rebuilds (their mean is the baseline);
- `ProjectionRunner.run(generation, follow=False)` from the same stream into a
  fresh generation of the SQLite view store, and of the PostgreSQL one
  (127.0.0.1:5432, database `test`), checked against the simulation's outcome.

Goal: >= 100,000 events/s and >= 0.6x the raw read.

Beside the rates, the CPU seconds each path took: this process's (all its
threads), the nats-server's and, rebuilding into PostgreSQL, its server
processes' (on this machine, sharing its cores), from /proc. On a shared
machine the rates move with everyone else's load; the CPU seconds much less.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import structlog
from nats.aio.msg import Msg

from bench.eventlog import EventLog, ensure_log
from projections.feeds import JetStreamFeed
from projections.picture import Picture
from projections.reading import issue_event
from projections.runner import Progress, ProjectionRunner
from projections.store import PostgresViewStore, SQLiteViewStore, ViewStore

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
NAMESPACE = "bench_replay"
ISSUE_EVENTS = "events.*.issue.*"


@dataclass
class Result:
    path: str
    events: int
    seconds: float
    cpu: float = 0.0  # this process, all threads
    server_cpu: float = 0.0  # the nats-server
    database_cpu: float = 0.0  # PostgreSQL's server processes, on this machine

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


class Shown:
    """A progress line on stderr, at most every half second."""

    def __init__(self, what: str, total: int) -> None:
        self.what = what
        self.total = total
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= 0.5:
            self.last = now
            rate = done / max(now - self.started, 1e-9)
            print(
                f"\r  {self.what}: {done:,}/{self.total:,} ({done / self.total:.0%}) "
                f"{rate:,.0f} events/s   ",
                end="",
                file=sys.stderr,
                flush=True,
            )

    def done(self) -> None:
        print(file=sys.stderr)


async def raw_read(url: str, clocks: Clocks, expected: int, subject: str = ISSUE_EVENTS) -> Result:
    """A plain nats-py ordered consumer: every message on `subject`, touching its data."""
    nc = await nats.connect(url)
    received = 0
    size = 0
    finished = asyncio.Event()
    shown = Shown(f"raw read {subject}", expected)

    async def on_message(msg: Msg) -> None:
        nonlocal received, size
        size += len(msg.data)
        received += 1
        if received >= expected:
            finished.set()
        elif received % 4096 == 0:
            shown(received)

    clocks.start()
    sub = await nc.jetstream().subscribe(
        subject, stream="EVENTS", ordered_consumer=True, cb=on_message, idle_heartbeat=1.0
    )
    await finished.wait()
    result = clocks.stop(f"raw nats-py ordered consumer, `{subject}`", received)
    shown(received, force=True)
    shown.done()
    await sub.unsubscribe()
    await nc.close()
    return result


async def rebuild(
    url: str, clocks: Clocks, store: ViewStore, log: EventLog, verify: bool
) -> Result:
    """`ProjectionRunner.run` into a fresh generation of `store`; checked, then dropped."""
    nc = await nats.connect(url)
    await asyncio.to_thread(store.prepare)
    generation = await asyncio.to_thread(store.new_generation)
    shown = Shown(f"rebuild into {type(store).__name__}", log.issue_events)
    try:
        runner = ProjectionRunner(store, JetStreamFeed(nc))
        clocks.start()
        progress: Progress = await runner.run(
            generation, follow=False, on_progress=lambda p: shown(p.applied)
        )
        result = clocks.stop(f"rebuild into {store_name(store)}", progress.applied)
        shown(progress.applied, force=True)
        shown.done()
        await asyncio.to_thread(check, store, generation, log)
        if verify:
            await verify_rows(nc, store, generation)
    finally:
        await asyncio.to_thread(store.abandon, generation)
        await nc.close()
    return result


def store_name(store: ViewStore) -> str:
    if isinstance(store, SQLiteViewStore):
        return "SQLite (WAL, synchronous=NORMAL)"
    return "PostgreSQL (127.0.0.1, db test)"


def check(store: ViewStore, generation: int, log: EventLog) -> None:
    """The rebuilt rows agree with the simulation: statuses and open issues per buurt."""
    table = store._issues(generation)
    with store._reading() as cur:
        cur.execute(f"SELECT status, COUNT(*) FROM {table} GROUP BY status")
        by_status = {status: int(count) for status, count in cur.fetchall()}
        cur.execute(f"SELECT buurt, COUNT(*) FROM {table} WHERE is_open = 1 GROUP BY buurt")
        open_by_buurt = {buurt: int(count) for buurt, count in cur.fetchall()}
    expected_open = {b: n for b, n in log.outcome["open_by_buurt"].items() if n}
    if by_status != log.outcome["by_status"] or open_by_buurt != expected_open:
        raise AssertionError(
            f"rebuilt rows disagree with the simulation: {by_status} != {log.outcome['by_status']}"
        )


async def verify_rows(nc: Any, store: ViewStore, generation: int) -> None:
    """Every stored row equals folding the log in memory with `projections.picture.apply`."""
    picture = Picture()
    async for batch in JetStreamFeed(nc).read(None, follow=False):
        for _position, topic, version, body in batch.events:
            event = issue_event(topic, body)
            if event is not None:
                picture.apply(event, version)
    stored = await asyncio.to_thread(store.load, generation, list(picture.rows))
    differ = Counter(
        "missing" if stored.get(i) is None else "differs"
        for i, row in picture.rows.items()
        if stored.get(i) != row
    )
    if differ:
        raise AssertionError(f"rows differ from the in-memory fold: {dict(differ)}")
    print(f"  verified: all {len(picture.rows):,} rows equal the in-memory fold", file=sys.stderr)


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds so far of the processes named `postgres` on this machine (the server
    and its backends; those that exit meanwhile are not counted)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.index("(") + 1 : text.rindex(")")] == "postgres":
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Clocks:
    """Wall and CPU seconds (this process's, the nats-server's) from `start` to `stop`."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def start(self) -> None:
        self.started = time.perf_counter()
        self.cpu = time.process_time()
        self.server_cpu = cpu_seconds(self.server_pid)
        self.database_cpu = postgres_cpu_seconds()

    def stop(self, path: str, events: int) -> Result:
        return Result(
            path,
            events,
            time.perf_counter() - self.started,
            time.process_time() - self.cpu,
            cpu_seconds(self.server_pid) - self.server_cpu,
            postgres_cpu_seconds() - self.database_cpu,
        )


async def run(log: EventLog, args: argparse.Namespace, workdir: Path) -> list[Result]:
    results = []
    with log.server() as server:
        assert server.process is not None
        clocks = Clocks(server.process.pid)
        expected = log.issue_events
        results.append(await raw_read(server.url, clocks, expected))
        sqlite = SQLiteViewStore(workdir / "views.sqlite", NAMESPACE)
        try:
            results.append(await rebuild(server.url, clocks, sqlite, log, args.verify))
        finally:
            sqlite.close()
        if not args.no_postgres:
            postgres = PostgresViewStore(args.postgres, NAMESPACE)
            try:
                results.append(await rebuild(server.url, clocks, postgres, log, args.verify))
            finally:
                postgres.close()
        results.append(await raw_read(server.url, clocks, expected))
        if args.whole_stream:
            total = log.issue_events + log.receipts
            results.append(await raw_read(server.url, clocks, total, "events.>"))
    return results


def report(results: list[Result], log: EventLog) -> None:
    raw = [r for r in results if r.path.endswith(f"`{ISSUE_EVENTS}`")]
    baseline = sum(r.per_second for r in raw) / len(raw)
    print(
        f"\n{log.issue_events:,} issue events ({log.receipts:,} receipts beside them in "
        f"EVENTS), {log.outcome['issues']:,} issues in {len(log.outcome['open_by_buurt'])} "
        "buurten; nats-server with sync_interval: always.\n"
    )
    print(
        "| path | events | seconds | events/s | vs raw read | CPU s here | CPU s nats-server "
        "| CPU s PostgreSQL |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for r in results:
        database = f"{r.database_cpu:.1f}" if "PostgreSQL" in r.path else "—"
        print(
            f"| {r.path} | {r.events:,} | {r.seconds:.2f} | {r.per_second:,.0f} | "
            f"{r.per_second / baseline:.2f}x | {r.cpu:.1f} | {r.server_cpu:.1f} | {database} |"
        )
    print(f"\nbaseline (mean of the raw reads of `{ISSUE_EVENTS}`): {baseline:,.0f} events/s")
    for r in results:
        if r.path.startswith("rebuild"):
            ok = r.per_second >= 100_000 and r.per_second >= 0.6 * baseline
            print(
                f"{r.path}: {r.per_second:,.0f} events/s, {r.per_second / baseline:.2f}x "
                f"({'meets' if ok else 'MISSES'} goal: >= 100,000 events/s and >= 0.6x)"
            )


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=None, help="where the log is kept")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--verify", action="store_true", help="compare every row with a fold")
    parser.add_argument(
        "--whole-stream", action="store_true", help="also time a raw read of all of EVENTS"
    )
    args = parser.parse_args()
    data = args.data or Path("var/bench") / f"events-{args.events}"
    print(f"event log: {args.events:,} issue events in {data}")
    log = ensure_log(data, args.events)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        results = asyncio.run(run(log, args, Path(tmp)))
    report(results, log)


if __name__ == "__main__":
    main()
