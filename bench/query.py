"""Query benchmark: `GET /api/v1/buurten/{buurt}/issues` under concurrent load.

    python -m bench.query            (or: make bench-query)

The real `buurtbeeld up` (`bench.system`) on the generated log
(`bench.eventlog`: 200 buurten, ~200 open issues each, ~40,000 open in all),
once its projection has caught up. Clients are keep-alive HTTP/1.1
connections on plain asyncio (a client library would take most of the two
cores from the server), each sending its next request when the answer is in.
In the same run, against the same server, at the same concurrency:

- `GET /api/v1/health`: the trivial endpoint, the baseline;
- the buurt closest to 200 open issues, one organisation asking: what a
  dashboard polling its buurt costs (the server's picture cache answers);
- every buurt in turn, four organisations asking: each answer read and
  encoded afresh.

Goal: p99 <= 10 ms and <= 3x the trivial endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.eventlog import ensure_log
from bench.memory import last_issue_event
from bench.system import Buurtbeeld

READERS = ("wijkteam-nieuw-west", "woonzorg", "gemeente-amsterdam", "welzijn-west")
GOAL_P99_MS = 10.0
GOAL_RATIO = 3.0


@dataclass
class Result:
    what: str
    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    bytes: int = 0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds


class Connection:
    """One keep-alive HTTP/1.1 connection: a GET, then its whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, path: str, token: str | None) -> tuple[int, bytes]:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}Accept: application/json\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"no Content-Length in {head!r}")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(
    port: int,
    what: str,
    requests: Callable[[int], tuple[str, str | None]],
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
) -> Result:
    """`concurrency` clients asking `requests(n)` back to back for `seconds` (after warming up)."""
    connections = [await Connection.open(port) for _ in range(concurrency)]
    result = Result(what, concurrency, seconds)
    counter = 0
    started = time.perf_counter()
    measuring_from = started + warmup
    until = measuring_from + seconds

    async def client(connection: Connection) -> None:
        nonlocal counter
        while True:
            counter += 1
            path, token = requests(counter)
            sent = time.perf_counter()
            if sent >= until:
                return
            status, body = await connection.get(path, token)
            done = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
            if sent >= measuring_from:
                result.latencies_ms.append((done - sent) * 1000)
                result.bytes += len(body)

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    return result


async def run_all(
    port: int, buurt: str, buurten: list[str], levels: list[int], seconds: float
) -> list[Result]:
    token = f"bench-{READERS[0]}"
    probe = await Connection.open(port)
    status, body = await probe.get(f"/api/v1/buurten/{buurt}/issues", token)
    probe.close()
    if status != 200:
        raise RuntimeError(f"{status}: {body[:300]!r}")
    open_issues = len(json.loads(body)["issues"])
    print(f"  {buurt}: {open_issues} open issues, {len(body):,} bytes of JSON")
    one = f"/api/v1/buurten/{buurt}/issues"

    def health(_: int) -> tuple[str, str | None]:
        return "/api/v1/health", None

    def same(_: int) -> tuple[str, str | None]:
        return one, token

    def rotating(n: int) -> tuple[str, str | None]:
        return f"/api/v1/buurten/{buurten[n % len(buurten)]}/issues", (
            f"bench-{READERS[(n // len(buurten)) % len(READERS)]}"
        )

    results = []
    for concurrency in levels:
        for what, requests in (
            ("GET /api/v1/health", health),
            (f"GET …/buurten/{buurt}/issues, one reader", same),
            ("GET …/buurten/{each}/issues, 4 readers", rotating),
        ):
            print(f"  {what}, {concurrency} clients ...", file=sys.stderr, flush=True)
            results.append(await load(port, what, requests, concurrency, seconds))
    return results


def report(results: list[Result], open_issues_note: str) -> None:
    print(f"\n{open_issues_note}\n")
    print(
        "| request | clients | requests/s | p50 ms | p99 ms | p99 vs health |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    baseline: dict[int, float] = {}
    for r in results:
        if r.what.endswith("health"):
            baseline[r.concurrency] = r.percentile(99)
        ratio = r.percentile(99) / baseline[r.concurrency]
        print(
            f"| {r.what} | {r.concurrency} | {r.per_second:,.0f} | {r.percentile(50):.2f} | "
            f"{r.percentile(99):.2f} | {ratio:.2f}x |"
        )
    print()
    for r in results:
        if "issues" in r.what:
            p99 = r.percentile(99)
            ratio = p99 / baseline[r.concurrency]
            ok = p99 <= GOAL_P99_MS and ratio <= GOAL_RATIO
            print(
                f"{r.what}, {r.concurrency} clients: p99 {p99:.2f} ms, {ratio:.2f}x health "
                f"({'meets' if ok else 'MISSES'} goal: p99 <= {GOAL_P99_MS:g} ms and "
                f"<= {GOAL_RATIO:g}x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=None, help="where the log is kept")
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 8, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    data = args.data or Path("var/bench") / f"events-{args.events}"
    print(f"event log: {args.events:,} issue events in {data}")
    log = ensure_log(data, args.events)
    open_by_buurt: dict[str, int] = log.outcome["open_by_buurt"]
    buurt = min(open_by_buurt, key=lambda b: (abs(open_by_buurt[b] - 200), b))
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        system = Buurtbeeld(log.copy_to(Path(tmp) / "data"))
        with system:
            system.wait_for("http.ready", within=1800)
            target = asyncio.run(last_issue_event(system.nats_url))
            print(f"  waiting for the projection to reach {target:,} ...", file=sys.stderr)
            while (system.view_position() or 0) < target:
                system.drain_log()
                time.sleep(0.5)
            results = asyncio.run(
                run_all(system.http_port, buurt, sorted(open_by_buurt), args.clients, args.seconds)
            )
    report(
        results,
        f"{sum(open_by_buurt.values()):,} open issues in {len(open_by_buurt)} buurten; "
        f"{buurt} has {open_by_buurt[buurt]}. Server: buurtbeeld up (uvicorn, one process); "
        "clients: keep-alive HTTP/1.1 on asyncio, in the benchmark's process.",
    )


if __name__ == "__main__":
    main()
