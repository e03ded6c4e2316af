"""Memory benchmark: resident size of `buurtbeeld up` with 1,000,000 events in its log.

    python -m bench.memory            (or: make bench-memory)

The real CLI (`python -m services.cli up`) on a data dir whose embedded
nats-server store holds the generated log (`bench.eventlog`, copied from
`var/bench/`), with the bench organisations and buurten (no demo). Measured
once the coordination has rebuilt its open issues and the projection has
caught up (the live view's position reached the last issue event), after a
few seconds to settle: RSS and peak RSS (VmHWM) of the buurtbeeld process from
/proc, and of its nats-server child apart. Baseline in the same run: the same
process on an empty log. Then once more on the same data dir: a restart, the
coordination's open issues read from the snapshot it kept when it stopped.

Goal: <= 500 MB for the buurtbeeld process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nats

from bench.eventlog import EventLog, ensure_log
from bench.system import Buurtbeeld, children, rss_kib
from events.jetstream.recorders import SEQUENCE_HEADER
from events.jetstream.wire import direct_get_last

GOAL_MB = 500
SETTLE_SECONDS = 5.0


@dataclass
class Result:
    what: str
    ready_seconds: float
    rebuilt_kib: int
    caught_up_seconds: float
    rss_kib: int
    peak_kib: int
    nats_kib: int


async def last_issue_event(url: str) -> int:
    nc = await nats.connect(url)
    try:
        last = await direct_get_last(nc, "EVENTS", "events.*.issue.*", 10)
    finally:
        await nc.close()
    return 0 if last is None else int((last.headers or {})[SEQUENCE_HEADER])


def measure(what: str, data_dir: Path) -> Result:
    with Buurtbeeld(data_dir) as system:
        pid = system.process.pid
        system.wait_for("coordination.rebuilt", within=1800)
        rebuilt, _ = rss_kib(pid)  # the projection starts after this
        system.wait_for("buurtbeeld.ready", within=1800)
        ready = time.monotonic() - system.started
        target = asyncio.run(last_issue_event(system.nats_url))
        shown = 0.0
        while True:
            position = system.view_position() or 0
            if position >= target:
                # Escalations written on start move the end: look again.
                target = asyncio.run(last_issue_event(system.nats_url))
                if position >= target:
                    break
            if time.monotonic() - shown > 1:
                shown = time.monotonic()
                rss, _ = rss_kib(pid)
                print(
                    f"\r  {what}: projection at {position:,} of {target:,}, "
                    f"RSS {rss / 1024:,.0f} MB   ",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            system.drain_log()
            time.sleep(0.2)
        caught_up = time.monotonic() - system.started
        time.sleep(SETTLE_SECONDS)
        rss, peak = rss_kib(pid)
        nats_kib = sum(rss_kib(child)[0] for child in children(pid))
        print(file=sys.stderr)
    return Result(what, ready, rebuilt, caught_up, rss, peak, nats_kib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=None, help="where the log is kept")
    args = parser.parse_args()
    data = args.data or Path("var/bench") / f"events-{args.events}"
    print(f"event log: {args.events:,} issue events in {data}")
    log: EventLog = ensure_log(data, args.events)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        print("baseline: buurtbeeld up on an empty log")
        results.append(measure("empty log", Path(tmp) / "empty"))
        print(f"buurtbeeld up on the generated log ({log.issue_events + log.receipts:,} messages)")
        copied = log.copy_to(Path(tmp) / "full")
        results.append(measure(f"{log.issue_events:,} issue events", copied))
        print("the same, started again (its open issues from the snapshot kept at the stop)")
        results.append(measure(f"{log.issue_events:,} issue events, started again", copied))
    print(
        "\n| log | ready after s | RSS when coordination rebuilt MB | caught up after s "
        "| buurtbeeld RSS MB | peak RSS MB | nats-server RSS MB |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    for r in results:
        print(
            f"| {r.what} | {r.ready_seconds:.1f} | {r.rebuilt_kib / 1024:,.0f} | "
            f"{r.caught_up_seconds:.1f} | "
            f"{r.rss_kib / 1024:,.0f} | {r.peak_kib / 1024:,.0f} | {r.nats_kib / 1024:,.0f} |"
        )
    full = results[1]
    verdict = "meets" if full.rss_kib / 1024 <= GOAL_MB else "MISSES"
    print(
        f"\nbuurtbeeld process with the full log: {full.rss_kib / 1024:,.0f} MB resident "
        f"(peak {full.peak_kib / 1024:,.0f} MB), {full.rss_kib / max(results[0].rss_kib, 1):.1f}x "
        f"the empty log ({verdict} goal <= {GOAL_MB} MB)"
    )


if __name__ == "__main__":
    main()
