"""Where a probe signal's time goes on its way to the picture, for `bench.freshness`.

Each stage ends at a moment some part of the system recorded itself, all on
this machine's wall clock:

- INTAKE stored: the message's time in the INTAKE stream (the server's);
- fetched by intake: the `intake.batch` log line of the batch that held its
  INTAKE sequence (`received_at`: when the pull loop handed it over);
- saved to EVENTS: the time in the EVENTS stream of the issue event that
  carries the signal (IssueOpened or SignalAttached);
- committed by the projection: the first moment a watcher (polling the SQLite
  views every `WATCH_INTERVAL`) saw the live position at or past that event;
- visible over HTTP: the first polling answer that showed it.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

WATCH_INTERVAL = 0.002
EVENTS_FILTER = "events.*.issue.*"
STAGES = (
    "publish -> INTAKE stored",
    "INTAKE stored -> fetched by intake",
    "fetched -> saved to EVENTS",
    "EVENTS -> committed by the projection",
    "committed -> visible over HTTP",
)


@dataclass
class ProbeTimes:
    """The moments one probe signal reached each stage (None where unknown)."""

    published: float
    intake_stored: float | None = None
    fetched: float | None = None
    events_stored: float | None = None
    committed: float | None = None
    visible: float | None = None

    def stages(self) -> list[float | None]:
        """Milliseconds spent in each of `STAGES`."""
        moments = [
            self.published,
            self.intake_stored,
            self.fetched,
            self.events_stored,
            self.committed,
            self.visible,
        ]
        return [None if a is None or b is None else (b - a) * 1000 for a, b in pairwise(moments)]


class CommitWatcher:
    """Polls the live view position in `views.sqlite`; `committed_at(p)` after `stop()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[int, float]] = []  # (position, first seen at), rising
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="commit-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        db: sqlite3.Connection | None = None
        last = -1
        while not self._stop.wait(WATCH_INTERVAL):
            try:
                if db is None:
                    if not self.path.exists():
                        continue
                    db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1)
                found = db.execute(
                    "SELECT position FROM picture_generations WHERE state = 'live'"
                ).fetchone()
            except sqlite3.Error:
                continue
            now = time.time()
            if found and found[0] is not None and int(found[0]) > last:
                last = int(found[0])
                self.seen.append((last, now))
        if db is not None:
            db.close()

    def committed_at(self, position: int) -> float | None:
        i = bisect.bisect_left(self.seen, (position, 0.0))
        return self.seen[i][1] if i < len(self.seen) else None


async def intake_times(url: str, sequences: Iterable[int]) -> dict[int, float]:
    """INTAKE's stored time of each sequence."""
    nc = await nats.connect(url)
    jsm = nc.jsm(timeout=30)
    found: dict[int, float] = {}
    try:
        wanted = list(sequences)
        for start in range(0, len(wanted), 200):
            chunk = wanted[start : start + 200]
            msgs = await asyncio.gather(*(jsm.get_msg("INTAKE", seq) for seq in chunk))
            for seq, msg in zip(chunk, msgs, strict=True):
                if msg.time is not None:
                    found[seq] = msg.time.timestamp()
    finally:
        await nc.close()
    return found


async def event_times(url: str, wanted: Callable[[str], bool]) -> dict[str, tuple[float, int]]:
    """signalRef -> (EVENTS stored time, stream sequence) of the issue events of
    the subjects `wanted` accepts that carry a signal."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=30)
    found: dict[str, tuple[float, int]] = {}
    try:
        sub = await js.pull_subscribe(
            EVENTS_FILTER,
            stream="EVENTS",
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=60,
            ),
        )
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=2)
            except TimeoutError:
                break
            for msg in msgs:
                if not wanted(msg.subject):
                    continue
                body: dict[str, Any] = json.loads(msg.data)
                signal = body.get("signal")
                if signal is not None:
                    meta = msg.metadata
                    found[signal["signalRef"]] = (meta.timestamp.timestamp(), meta.sequence.stream)
            if msgs and msgs[-1].metadata.num_pending == 0:
                break
        await sub.unsubscribe()
    finally:
        await nc.close()
    return found


def batch_of(records: Sequence[dict[str, Any]]) -> Callable[[int], dict[str, Any] | None]:
    """The `intake.batch` log record whose INTAKE sequences hold a given one."""
    spans = []
    for record in records:
        if record.get("event") != "intake.batch" or not record.get("stream_sequence"):
            continue
        first, _, last = str(record["stream_sequence"]).partition("-")
        spans.append((int(first), int(last or first), record))
    spans.sort(key=lambda span: span[0])
    starts = [span[0] for span in spans]

    def find(sequence: int) -> dict[str, Any] | None:
        i = bisect.bisect_right(starts, sequence) - 1
        if i >= 0 and spans[i][0] <= sequence <= spans[i][1]:
            return spans[i][2]
        return None

    return find


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def stage_table(probes: Sequence[ProbeTimes]) -> str:
    """Per stage: p50/p90/p99/max, and its mean share in the slowest 1% of probes."""
    complete = [p for p in probes if None not in p.stages()]
    if not complete:
        return "(no probe with every stage known)"
    totals = [sum(s for s in p.stages() if s is not None) for p in complete]
    cut = percentile(totals, 99)
    tail = [p for p, total in zip(complete, totals, strict=True) if total >= cut]
    lines = [
        f"Stages of {len(complete):,} probes with every moment known "
        f"(the slowest 1%: {len(tail)} probes, from {cut:.0f} ms):",
        "",
        "| stage | p50 ms | p90 ms | p99 ms | max ms | mean in the slowest 1% |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for i, name in enumerate(STAGES):
        values = [p.stages()[i] or 0.0 for p in complete]
        in_tail = [p.stages()[i] or 0.0 for p in tail]
        lines.append(
            f"| {name} | {percentile(values, 50):.1f} | {percentile(values, 90):.1f} | "
            f"{percentile(values, 99):.1f} | {max(values):.1f} | "
            f"{sum(in_tail) / len(in_tail):.1f} |"
        )
    first = min(p.published for p in complete)
    when = sorted(round(p.published - first, 1) for p in tail)
    lines += ["", f"The slowest 1% were published at these seconds into the run: {when}"]
    return "\n".join(lines)


def batch_summary(records: Sequence[dict[str, Any]], since: float) -> str:
    batches = [r for r in records if r.get("event") == "intake.batch"]
    if not batches:
        return "(no intake batches logged)"
    sizes = [float(r["messages"]) for r in batches]
    clashes = sum(int(r.get("clashes", 0)) for r in batches)
    seconds = [float(r["seconds"]) * 1000 for r in batches]
    return (
        f"intake: {len(batches):,} batches ({clashes} saves refused and planned again); "
        f"messages per batch p50 {percentile(sizes, 50):.0f}, "
        f"p99 {percentile(sizes, 99):.0f}, max {max(sizes):.0f}; "
        f"ms per batch (fetched -> acked) p50 {percentile(seconds, 50):.1f}, "
        f"p99 {percentile(seconds, 99):.1f}, max {max(seconds):.1f}\n  the longest, "
        "fetched at, into the run: "
        + ", ".join(
            f"{float(r['received_at']) - since:.1f}s ({float(r['seconds']) * 1000:.0f} ms, "
            f"{r['messages']} messages, stored after "
            f"{(float(r['stored_at']) - float(r['received_at'])) * 1000:.0f} ms)"
            for r in sorted(batches, key=lambda r: -float(r["seconds"]))[:5]
            if "received_at" in r
        )
    )


def gc_summary(records: Sequence[dict[str, Any]], since: float) -> str:
    """The long collections by generation, and when (seconds since `since`) they ended."""
    pauses = [r for r in records if r.get("event") == "gc.pause"]
    if not pauses:
        return "garbage collector: no pause of 10 ms or more"
    moments = [
        f"{float(r['ended_at']) - since:.1f}s ({float(r['seconds']) * 1000:.0f} ms)"
        for r in pauses
        if float(r["ended_at"]) >= since
    ]
    by_generation: dict[int, list[float]] = {}
    for r in pauses:
        by_generation.setdefault(int(r["generation"]), []).append(float(r["seconds"]) * 1000)
    parts = [
        f"generation {g}: {len(ms)}, longest {max(ms):.0f} ms, {sum(ms):.0f} ms in all"
        for g, ms in sorted(by_generation.items())
    ]
    return (
        "garbage collector pauses of 10 ms or more: "
        + "; ".join(parts)
        + f"\n  ended at, into the run: {', '.join(moments) or '-'}"
    )
