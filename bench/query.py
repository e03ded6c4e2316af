"""Query benchmark: `GET /api/v1/buurten/{buurt}/issues` under concurrent load.

    python -m bench.query            (or: make bench-query)

The real `buurtbeeld up` (`bench.system`) on the generated log
(`bench.eventlog`: 200 buurten, ~200 open issues each, ~40,000 open in all),
once its projection has caught up. Clients are keep-alive HTTP/1.1
connections on plain asyncio (a client library would take most of the two
cores from the server), each sending its next request when the answer is in.
They accept gzip, as HTTP clients and browsers do by default (`Accept-Encoding:
gzip`); an answer given again comes compressed (`projections.gzipped`). The
clients take the bytes as they come and do not decompress them, as they do not
decode the JSON either: that is the client's machine's work, not the server's.
In the same run, against the same server, at the same concurrency:

- `GET /api/v1/health`: the trivial endpoint, the baseline;
- the buurt closest to 200 open issues, one organisation asking: what a
  dashboard polling its buurt costs, while nothing changes;
- the same, asked by a client that takes no gzip (`Accept-Encoding: identity`);
- the same while the buurt changes: a partner (`Changes`, in this process, on
  NATS as CONTRACT.md says) keeps sending signals to its issues' places and
  claiming and releasing its unowned issues, `--changes` a second in all;
- every buurt in turn, four organisations asking: 800 different answers, each
  asked again only after all the others.

The server's RSS is printed before the runs (caught up) and after them: what
answering added (kept buurten and answers are bounded).

Goal: p99 <= 10 ms and <= 3x the trivial endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import itertools
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

from bench.eventlog import ensure_log
from bench.memory import last_issue_event
from bench.system import Buurtbeeld, rss_kib
from projections.answers import GZIP_AFTER

READERS = ("wijkteam-nieuw-west", "woonzorg", "gemeente-amsterdam", "welzijn-west")
# Who signals and acts in the changing buurt (organisations of `bench.eventlog`).
PARTNERS = ("woonzorg", "stadgenoot", "gemeente-amsterdam", "welzijn-west")
GOAL_P99_MS = 10.0
GOAL_RATIO = 3.0


@dataclass
class Result:
    what: str
    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    bytes: int = 0
    gzipped: int = 0

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

    async def get(
        self, path: str, token: str | None, accept_encoding: str = "gzip"
    ) -> tuple[int, bytes, bool]:
        """The status, the body as it came, and whether it came in gzip."""
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}Accept: application/json\r\n"
            f"Accept-Encoding: {accept_encoding}\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        gzipped = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"content-encoding":
                gzipped = value.strip() == b"gzip"
        if length is None:
            raise RuntimeError(f"no Content-Length in {head!r}")
        return status, await self.reader.readexactly(length), gzipped

    async def picture(
        self, path: str, token: str, accept_encoding: str = "gzip"
    ) -> tuple[Any, int, bool]:
        """The picture at `path`, decoded (and decompressed); the bytes as they came, and
        whether they came in gzip."""
        status, body, gzipped = await self.get(path, token, accept_encoding)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        return json.loads(gzip.decompress(body) if gzipped else body), len(body), gzipped

    def close(self) -> None:
        self.writer.close()


async def load(
    port: int,
    what: str,
    requests: Callable[[int], tuple[str, str | None]],
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
    accept_encoding: str = "gzip",
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
            status, body, gzipped = await connection.get(path, token, accept_encoding)
            done = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
            if sent >= measuring_from:
                result.latencies_ms.append((done - sent) * 1000)
                result.bytes += len(body)
                result.gzipped += gzipped

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    return result


class Changes:
    """A partner changing one buurt: signals to its open issues' places (they attach), and
    claims of its unowned issues, each released again by the claimer: `per_second` in all."""

    def __init__(self, nats_url: str, buurt: str, picture: dict[str, Any], per_second: float):
        self.nats_url = nats_url
        self.buurt = buurt
        self.per_second = per_second
        issues = picture["issues"]
        self.places = [
            (i["category"], i["location"]["key"])
            for i in issues
            if i["contentVisible"] and (i.get("location") or {}).get("key")
        ]
        self.unowned = [i["id"] for i in issues if i["status"] in ("unowned", "escalated")]
        self.sent = 0
        self.accepted = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Changes]:
        """Changing the buurt until the block ends."""
        nc = await nats.connect(self.nats_url)
        stop = asyncio.Event()
        task = asyncio.create_task(self._change(nc, stop))
        try:
            yield self
        finally:
            # Told, not cancelled: on Python 3.11 a cancel that meets a reply arriving
            # in nats-py's wait_for is swallowed, and the partner would go on for ever.
            stop.set()
            await asyncio.wait({task}, timeout=30)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await nc.close()

    async def _change(self, nc: nats.NATS, stop: asyncio.Event) -> None:
        js = nc.jetstream(timeout=10)
        started = time.monotonic()
        claimed: list[tuple[str, str]] = []  # (organisation, issue) to release next
        for n in itertools.count():
            if stop.is_set():
                return
            await asyncio.sleep(max(0.0, started + n / self.per_second - time.monotonic()))
            partner = PARTNERS[n % len(PARTNERS)]
            if n % 3 == 0 and self.places:
                category, key = self.places[n % len(self.places)]
                ref = f"query-bench-{time.time_ns()}"
                body = {
                    "signalRef": ref,
                    "buurt": self.buurt,
                    "category": category,
                    "summary": f"Nog een melding ({n})",
                    "observedAt": datetime.now(UTC).isoformat(),
                    "location": {"key": key},
                }
                await js.publish(
                    f"intake.{partner}.signals",
                    json.dumps(body).encode(),
                    headers={"Nats-Msg-Id": f"{partner}/{ref}"},
                )
                self.accepted += 1
            elif claimed and n % 3 == 2:
                organisation, issue_id = claimed.pop()
                await self._command(nc, organisation, "release", issue_id)
            elif self.unowned:
                issue_id = self.unowned[n % len(self.unowned)]
                if await self._command(nc, partner, "claim", issue_id):
                    claimed.append((partner, issue_id))
            self.sent += 1

    async def _command(self, nc: nats.NATS, organisation: str, verb: str, issue_id: str) -> bool:
        reply = await nc.request(
            f"cmd.{organisation}.{verb}", json.dumps({"issueId": issue_id}).encode(), timeout=10
        )
        ok = bool(json.loads(reply.data).get("ok"))
        self.accepted += ok
        return ok


async def run_all(
    port: int,
    nats_url: str,
    buurt: str,
    buurten: list[str],
    levels: list[int],
    seconds: float,
    changes_per_second: float,
) -> list[Result]:
    token = f"bench-{READERS[0]}"
    one = f"/api/v1/buurten/{buurt}/issues"
    probe = await Connection.open(port)
    picture, size, _ = await probe.picture(one, token, "identity")
    # Asked again while kept, often enough (`GZIP_AFTER`): in gzip, the same issues.
    for _ in range(GZIP_AFTER + 1):
        again, gzipped_size, gzipped = await probe.picture(one, token)
        if gzipped:
            break
    probe.close()
    if not gzipped or [i["id"] for i in again["issues"]] != [i["id"] for i in picture["issues"]]:
        raise RuntimeError(f"{buurt} asked again: not the same picture in gzip")
    print(
        f"  {buurt}: {len(picture['issues'])} open issues, {size:,} bytes of JSON, "
        f"{gzipped_size:,} in gzip"
    )
    changes = Changes(nats_url, buurt, picture, changes_per_second)

    def health(_: int) -> tuple[str, str | None]:
        return "/api/v1/health", None

    def same(_: int) -> tuple[str, str | None]:
        return one, token

    def rotating(n: int) -> tuple[str, str | None]:
        return f"/api/v1/buurten/{buurten[n % len(buurten)]}/issues", (
            f"bench-{READERS[(n // len(buurten)) % len(READERS)]}"
        )

    changing = f"GET …/buurten/{buurt}/issues, one reader, {changes_per_second:g} changes/s"
    identity = f"GET …/buurten/{buurt}/issues, one reader, no gzip"
    results = []
    for concurrency in levels:
        for what, requests in (
            ("GET /api/v1/health", health),
            (f"GET …/buurten/{buurt}/issues, one reader", same),
            (identity, same),
            (changing, same),
            ("GET …/buurten/{each}/issues, 4 readers", rotating),
        ):
            print(f"  {what}, {concurrency} clients ...", file=sys.stderr, flush=True)
            accept_encoding = "identity" if what == identity else "gzip"
            if what != changing:
                results.append(
                    await load(port, what, requests, concurrency, seconds, 1.0, accept_encoding)
                )
                continue
            sent, accepted = changes.sent, changes.accepted
            async with changes.running():
                results.append(await load(port, what, requests, concurrency, seconds))
            print(
                f"  ... {changes.sent - sent} changes sent, {changes.accepted - accepted} "
                "accepted (signals, claims, releases)",
                file=sys.stderr,
            )
    probe = await Connection.open(port)
    picture, size, _ = await probe.picture(one, token, "identity")
    probe.close()
    print(
        f"  {buurt} after the changes: {len(picture['issues'])} open issues, {size:,} bytes of JSON"
    )
    return results


def report(results: list[Result], open_issues_note: str) -> None:
    print(f"\n{open_issues_note}\n")
    print(
        "| request | clients | requests/s | KB an answer | in gzip | p50 ms | p99 ms "
        "| p99 vs health |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    baseline: dict[int, float] = {}
    for r in results:
        if r.what.endswith("health"):
            baseline[r.concurrency] = r.percentile(99)
        ratio = r.percentile(99) / baseline[r.concurrency]
        answers = len(r.latencies_ms)
        print(
            f"| {r.what} | {r.concurrency} | {r.per_second:,.0f} | "
            f"{r.bytes / answers / 1000:,.1f} | {r.gzipped / answers:.0%} | "
            f"{r.percentile(50):.2f} | {r.percentile(99):.2f} | {ratio:.2f}x |"
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
    parser.add_argument(
        "--changes", type=float, default=20.0, help="changes a second to the changing buurt"
    )
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
            before, _ = rss_kib(system.process.pid)
            results = asyncio.run(
                run_all(
                    system.http_port,
                    system.nats_url,
                    buurt,
                    sorted(open_by_buurt),
                    args.clients,
                    args.seconds,
                    args.changes,
                )
            )
            rss, peak = rss_kib(system.process.pid)
    report(
        results,
        f"{sum(open_by_buurt.values()):,} open issues in {len(open_by_buurt)} buurten; "
        f"{buurt} has {open_by_buurt[buurt]}. Server: buurtbeeld up (uvicorn, one process); "
        "clients: keep-alive HTTP/1.1 on asyncio, in the benchmark's process. "
        f"Server RSS caught up {before / 1024:,.0f} MB, after the runs {rss / 1024:,.0f} MB "
        f"(peak {peak / 1024:,.0f} MB).",
    )


if __name__ == "__main__":
    main()
