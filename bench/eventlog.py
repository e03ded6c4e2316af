"""A realistic EVENTS stream for the benchmarks, generated once and kept.

    python -m bench.eventlog --events 1000000      (the benchmarks call `ensure_log`)

Issue lifecycles across ~200 buurten, as the coordination service writes them:
intake batches (each signal's IssueOpened or SignalAttached first, then one
SignalReceived receipt per signal, in one atomic batch), commands one write
each (claim, handover offered / accepted / declined, release, resolve, reopen,
merge with its IssueAbsorbed), and hourly escalation sweeps. Bodies are the
contract JSON (`events.contract`), subjects `events.<buurt>.issue.<hex>` and
`events.receipts.<org>.<sha256 hex 40>`, headers `Es-Topic` and `Es-Version`.
Open issues settle near `--open-per-buurt` per buurt.

The simulation is deterministic (seeded); its outcome (open issues per buurt,
rows by status) goes to `log.json` beside the store, for the benchmarks to
check the rebuilt picture against. The store is an embedded nats-server's
(`<dir>/nats`), exactly as `buurtbeeld up` keeps it under `$BUURTBEELD_DATA`;
a directory whose `log.json` matches the request is reused as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import json
import random
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgspec
import nats
from nats.aio.msg import Msg

from events.contract import (
    HandoverAccepted,
    HandoverDeclined,
    HandoverOffered,
    IssueAbsorbed,
    IssueEscalated,
    IssueMerged,
    IssueOpened,
    IssueReopened,
    IssueResolved,
    Location,
    OwnershipClaimed,
    OwnershipReleased,
    Reporter,
    Signal,
    SignalAttached,
    SignalReceived,
    SignalRecord,
)
from events.jetstream import ensure_streams
from events.jetstream.wire import encode_hpub, write_raw
from events.personal_data import MemoryKeyStore, PersonalDataVault
from services.coordination.intake import signal_record
from services.embedded_nats import CONFIG_TEMPLATE, EmbeddedNats
from services.registries import DEFAULT_CATEGORIES

FORMAT = 4  # bump when the generated log changes shape: old caches are not reused
SYSTEM = "buurtbeeld"
# (id, kind): the organisations that signal and act; bench files give them tokens.
ORGANISATIONS = (
    ("woonzorg", "woningcorporatie"),
    ("stadgenoot", "woningcorporatie"),
    ("eigen-haard", "woningcorporatie"),
    ("wijkteam-nieuw-west", "wijkteam"),
    ("wijkteam-slotervaart", "wijkteam"),
    ("gemeente-amsterdam", "gemeente"),
    ("stadsdeel-nieuw-west", "gemeente"),
    ("welzijn-west", "welzijn"),
    ("buurtzorg-west", "welzijn"),
    ("politie-west", "politie"),
    ("bewonersportaal", "bewoners"),
    ("buurtpanel-osdorp", "bewoners"),
)
ORGS = tuple(org for org, _ in ORGANISATIONS)
# Public space most, social matters less often.
CATEGORY_WEIGHTS = {
    "grof-vuil": 30,
    "onderhoud": 18,
    "verloedering": 12,
    "overlast": 14,
    "veiligheid": 5,
    "eenzaamheid": 4,
    "armoede": 3,
    "schulden": 4,
    "jeugd": 4,
    "gezondheid": 2,
    "multiprobleem": 3,
    "radicalisering": 1,
}
STREETS = (
    "Louweshoek", "Pieter Calandlaan", "Ookmeerweg", "Slotermeerlaan", "Burgemeester Röellstraat",
    "Meer en Vaart", "Tussen Meer", "Osdorpplein", "Sloterweg", "Dijkgraafplein",
)  # fmt: skip
SUMMARIES = (
    "Grof vuil naast de containers bij de parkeerplaats",
    "Kapotte lantaarnpaal, het pad is 's avonds donker",
    "Bewoner lijkt al weken niemand te zien, post stapelt zich op",
    "Jongeren hangen 's avonds rond de ingang, bewoners voelen zich onveilig",
    "Losliggende stoeptegels voor de ingang van de flat",
    "Zwerfvuil en kapotte fietsen in de fietsenstalling",
    "Huurachterstand en signalen van schulden bij een gezin",
    "Overlast door harde muziek, meerdere meldingen uit het portiek",
    "Graffiti op de gevel van de basisschool",
    "Lekkage in de kelderbox, schimmel in de gang",
)
ROLES = ("huismeester", "wijkverpleegkundige", "buurtbewoner", "wijkagent", "opbouwwerker")
WINDOW = timedelta(days=7)  # a signal attaches to an issue changed this recently


@dataclass
class Issue:
    id: str
    buurt: str
    category: str
    place: str
    version: int = 1
    owner: str | None = None
    handover_to: str | None = None
    escalated: bool = False
    unowned_since: datetime | None = None
    last_changed: datetime = field(default_factory=lambda: datetime.now(UTC))
    reporters: set[str] = field(default_factory=set)
    signals: int = 1
    closed: str | None = None  # "resolved" / "merged"

    @property
    def status(self) -> str:
        if self.closed:
            return self.closed
        if self.handover_to:
            return "handover-pending"
        if self.owner:
            return "owned"
        return "escalated" if self.escalated else "unowned"


Message = tuple[str, dict[str, str], bytes]  # subject, headers, body


class OpenSet:
    """Ids with O(1) add, remove and random choice."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: str) -> None:
        if item not in self.index:
            self.index[item] = len(self.items)
            self.items.append(item)

    def remove(self, item: str) -> None:
        i = self.index.pop(item, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.index[last] = i

    def choice(self, rng: random.Random) -> str:
        return self.items[rng.randrange(len(self.items))]


class Simulation:
    """Writes (lists of messages, each list one atomic write) in log order."""

    def __init__(self, events: int, buurten: int, open_per_buurt: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.target_events = events
        self.buurten = [f"BU0363{n:04d}" for n in range(buurten)]
        self.open_per_buurt = open_per_buurt
        self.places_per_buurt = max(50, open_per_buurt * 3)
        self.issues: dict[str, Issue] = {}
        self.open: dict[str, OpenSet] = {b: OpenSet() for b in self.buurten}
        self.resolved: dict[str, list[str]] = {b: [] for b in self.buurten}
        self.places = 0
        # (due at, issue id, unowned since) of issues that may need escalating.
        self.due: list[tuple[datetime, str, datetime]] = []
        self.categories = list(CATEGORY_WEIGHTS)
        self.weights = list(CATEGORY_WEIGHTS.values())
        self.targets = {c.code: c.target_time_to_ownership for c in DEFAULT_CATEGORIES}
        self.sensitivity = {c.code: c.sensitivity.value for c in DEFAULT_CATEGORIES}
        self.issue_events = 0
        self.receipts = 0
        self.signal_number = 0
        self.end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        self.start = self.end - timedelta(days=90)
        self.step = (self.end - self.start) / events
        self.now = self.start
        self.next_sweep = self.start + timedelta(hours=1)
        self.encode = msgspec.json.Encoder().encode
        # Personal data sealed as intake seals it (its keys are not kept: nobody reads them).
        self.seal = PersonalDataVault(MemoryKeyStore()).seal

    # -- messages ---------------------------------------------------------

    def _event(self, issue: Issue, event: msgspec.Struct) -> Message:
        self.issue_events += 1
        self.now += self.step
        return (
            f"events.{issue.id}",
            {"Es-Topic": type(event).__name__, "Es-Version": str(issue.version)},
            self.encode(event),
        )

    def _receipt(self, organisation: str, signal_ref: str, issue_id: str) -> Message:
        self.receipts += 1
        digest = hashlib.sha256(signal_ref.encode()).hexdigest()[:40]
        receipt_id = f"receipts.{organisation}.{digest}"
        body = SignalReceived(
            receipt_id=receipt_id,
            organisation=organisation,
            signal_ref=signal_ref,
            issue_id=issue_id,
            at=self.now,
        )
        return (
            f"events.{receipt_id}",
            {"Es-Topic": "SignalReceived", "Es-Version": "1"},
            (self.encode(body)),
        )

    def _common(self, issue: Issue, organisation: str) -> dict[str, Any]:
        return {
            "issue_id": issue.id,
            "buurt": issue.buurt,
            "category": issue.category,
            "at": self.now,
            "organisation": organisation,
        }

    # -- the writes ---------------------------------------------------------

    def writes(self) -> Iterator[list[Message]]:
        rng = self.rng
        while self.issue_events < self.target_events:
            if self.now >= self.next_sweep:
                yield from self._sweep()
                continue
            if rng.random() < 0.12:
                yield self._intake(rng.randint(1, 8))
            else:
                write = self._command()
                if write:
                    yield write

    def _signal(self, organisation: str, buurt: str, category: str, place: str) -> SignalRecord:
        rng = self.rng
        self.signal_number += 1
        number = int(place.rsplit("-", 1)[1])
        street = STREETS[number % len(STREETS)]
        social = self.sensitivity[category] == "vertrouwelijk"
        sent = Signal(
            signal_ref=f"{organisation[:3]}-{self.signal_number:08d}",
            buurt=buurt,
            category=category,
            summary=f"{SUMMARIES[rng.randrange(len(SUMMARIES))]} ({street} {number})",
            observed_at=self.now - timedelta(minutes=rng.randint(1, 600)),
            location=Location(
                key=place,
                address=f"{street} {number}",
                lat=round(52.35 + rng.random() / 50, 6),
                lon=round(4.79 + rng.random() / 50, 6),
            ),
            reporter=(
                Reporter(role=rng.choice(ROLES), name="J. de Vries", phone="0612345678")
                if social or rng.random() < 0.3
                else None
            ),
            subject_ref=f"hh-{rng.getrandbits(24):06x}" if social else None,
        )
        return signal_record(organisation, sent, self.seal)

    def _intake(self, count: int) -> list[Message]:
        rng = self.rng
        events: list[Message] = []
        receipts: list[Message] = []
        for _ in range(count):
            buurt = self.buurten[rng.randrange(len(self.buurten))]
            organisation = ORGS[rng.randrange(len(ORGS))]
            open_here = self.open[buurt]
            issue = None
            # Over half the signals are about something already reported.
            if open_here and rng.random() < 0.65:
                issue = self.issues[open_here.choice(rng)]
                if self.now - issue.last_changed > WINDOW:
                    issue = None
            if issue is not None:
                signal = self._signal(organisation, buurt, issue.category, issue.place)
                issue.version += 1
                issue.signals += 1
                issue.reporters.add(organisation)
                issue.last_changed = self.now
                event: msgspec.Struct = SignalAttached(
                    **self._common(issue, organisation), signal=signal
                )
            else:
                category = rng.choices(self.categories, self.weights)[0]
                self.places += 1
                place = f"{buurt}-{category}-{self.places}"
                signal = self._signal(organisation, buurt, category, place)
                issue = Issue(
                    id=f"{buurt}.issue.{rng.getrandbits(128):032x}",
                    buurt=buurt,
                    category=category,
                    place=place,
                    unowned_since=self.now,
                    last_changed=self.now,
                    reporters={organisation},
                )
                self.issues[issue.id] = issue
                open_here.add(issue.id)
                self._unowned(issue)
                event = IssueOpened(
                    **self._common(issue, organisation),
                    sensitivity=self.sensitivity[category],
                    signal=signal,
                )
            events.append(self._event(issue, event))
            receipts.append(self._receipt(organisation, signal.signal_ref, issue.id))
        return events + receipts

    def _unowned(self, issue: Issue) -> None:
        """`issue` became unowned now: due for escalation after its category's target."""
        assert issue.unowned_since is not None
        due_at = issue.unowned_since + self.targets[issue.category]
        heapq.heappush(self.due, (due_at, issue.id, issue.unowned_since))

    def _command(self) -> list[Message]:
        rng = self.rng
        buurt = self.buurten[rng.randrange(len(self.buurten))]
        open_here = self.open[buurt]
        # More open issues than wanted: organisations resolve more often.
        pressure = len(open_here) / self.open_per_buurt
        if self.resolved[buurt] and rng.random() < 0.01:
            return self._reopen(buurt)
        if not open_here:
            return []
        issue = self.issues[open_here.choice(rng)]
        org = ORGS[rng.randrange(len(ORGS))]
        status = issue.status
        if status in ("unowned", "escalated"):
            if rng.random() < 0.01 and len(open_here) > 1:
                return self._merge(issue)
            issue.owner, issue.unowned_since, issue.escalated = org, None, False
            return self._change(issue, OwnershipClaimed(**self._common(issue, org)))
        if status == "handover-pending":
            to, previous = issue.handover_to, issue.owner
            assert to is not None and previous is not None
            issue.handover_to = None
            if rng.random() < 0.75:
                issue.owner = to
                event: msgspec.Struct = HandoverAccepted(
                    **self._common(issue, to), previous_owner=previous
                )
            else:
                event = HandoverDeclined(**self._common(issue, to))
            return self._change(issue, event)
        owner = issue.owner
        assert owner is not None
        roll = rng.random()
        if roll < 0.15:
            issue.handover_to = rng.choice([o for o in ORGS if o != owner])
            event = HandoverOffered(**self._common(issue, owner), to=issue.handover_to)
        elif roll < 0.22:
            issue.owner, issue.unowned_since, issue.escalated = None, self.now, False
            self._unowned(issue)
            event = OwnershipReleased(**self._common(issue, owner))
        elif roll < 0.22 + 0.6 * pressure**4:
            self._close(issue, "resolved")
            event = IssueResolved(
                **self._common(issue, owner), resolution="Opgeruimd en met de melder besproken"
            )
        else:
            return []
        return self._change(issue, event)

    def _change(self, issue: Issue, event: msgspec.Struct) -> list[Message]:
        issue.version += 1
        issue.last_changed = self.now
        return [self._event(issue, event)]

    def _close(self, issue: Issue, how: str) -> None:
        issue.closed = how
        issue.owner = issue.handover_to = None
        self.open[issue.buurt].remove(issue.id)
        if how == "resolved":
            resolved = self.resolved[issue.buurt]
            resolved.append(issue.id)
            if len(resolved) > 200:
                del resolved[: len(resolved) - 200]

    def _reopen(self, buurt: str) -> list[Message]:
        rng = self.rng
        resolved = self.resolved[buurt]
        issue = self.issues[resolved.pop(rng.randrange(len(resolved)))]
        org = ORGS[rng.randrange(len(ORGS))]
        issue.closed = None
        issue.unowned_since, issue.escalated = self.now, False
        self._unowned(issue)
        self.open[buurt].add(issue.id)
        return self._change(issue, IssueReopened(**self._common(issue, org), reason="Weer gemeld"))

    def _merge(self, issue: Issue) -> list[Message]:
        rng = self.rng
        open_here = self.open[issue.buurt]
        into = self.issues[open_here.choice(rng)]
        if into.id == issue.id:
            return []
        org = into.owner or ORGS[rng.randrange(len(ORGS))]
        self._close(issue, "merged")
        merged = self._change(issue, IssueMerged(**self._common(issue, org), into=into.id))
        into.signals += issue.signals
        into.reporters |= issue.reporters
        absorbed = IssueAbsorbed(
            **self._common(into, org),
            merged=issue.id,
            signal_count=issue.signals,
            reporters=sorted(issue.reporters),
        )
        return merged + self._change(into, absorbed)

    def _sweep(self) -> Iterator[list[Message]]:
        """The escalation scheduler: every unowned issue past its category's target, once."""
        at = self.now
        self.next_sweep = at + timedelta(hours=1)
        due = []
        while self.due and self.due[0][0] <= at:
            due_at, issue_id, unowned_since = heapq.heappop(self.due)
            issue = self.issues[issue_id]
            if (
                issue.closed is None
                and issue.owner is None
                and not issue.escalated
                and issue.unowned_since == unowned_since
            ):
                due.append((issue, due_at))
        for start in range(0, len(due), 900):
            write = []
            for issue, due_at in due[start : start + 900]:
                issue.escalated = True
                event = IssueEscalated(**self._common(issue, SYSTEM), due_at=due_at)
                write += self._change(issue, event)
            yield write

    def outcome(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for issue in self.issues.values():
            by_status[issue.status] = by_status.get(issue.status, 0) + 1
        return {
            "issue_events": self.issue_events,
            "receipts": self.receipts,
            "issues": len(self.issues),
            "by_status": by_status,
            "open_by_buurt": {b: len(s) for b, s in self.open.items()},
            "signals": self.signal_number,
            "until": self.now.isoformat(),
        }


# -- publishing ---------------------------------------------------------------


class Publisher:
    """Writes pipelined, `window` of them awaiting their acks.

    A write of several messages is published message by message, not as an
    atomic batch: JetStream's atomic batches take milliseconds each, which
    would make generating a million events take many minutes. Every message
    expects its subject's last sequence (`Nats-Expected-Last-Subject-Sequence`,
    as the coordination's writes do), so the server checks that the log is
    stored in exactly the simulated order.
    """

    def __init__(self, nc: nats.NATS, window: int = 64) -> None:
        self.nc = nc
        self.capacity = window
        self.window = asyncio.Semaphore(window)
        self.pending: dict[str, asyncio.Future[Msg]] = {}
        self.prefix = f"_INBOX.bench.{uuid4().hex}"
        self.counter = 0
        self.failures: list[bytes] = []
        self.sequence = 0  # the stream sequence of the last message written
        self.last_of: dict[str, int] = {}

    async def start(self) -> None:
        async def on_ack(msg: Msg) -> None:
            future = self.pending.pop(msg.subject, None)
            if future is not None:
                future.set_result(msg)

        await self.nc.subscribe(f"{self.prefix}.*", cb=on_ack)

    async def write(self, messages: list[Message]) -> None:
        await self.window.acquire()
        self.counter += 1
        inbox = f"{self.prefix}.{self.counter}"
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self.pending[inbox] = future
        parts = []
        last = len(messages) - 1
        for number, (subject, headers, data) in enumerate(messages):
            self.sequence += 1
            expected = f"Nats-Expected-Last-Subject-Sequence: {self.last_of.get(subject, 0)}\r\n"
            self.last_of[subject] = self.sequence
            parts.append(
                encode_hpub(
                    subject, headers, data, reply=inbox if number == last else "", extra=expected
                )
            )
        await write_raw(self.nc, parts)
        future.add_done_callback(self._acked)

    def _acked(self, future: asyncio.Future[Msg]) -> None:
        self.window.release()
        ack = future.result()
        if b'"error"' in ack.data:
            self.failures.append(ack.data)

    async def drain(self) -> None:
        """Until every write has its ack."""
        for _ in range(self.capacity):
            await self.window.acquire()


async def _publish(url: str, simulation: Simulation, progress: bool) -> None:
    ensure_streams({"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": url})
    nc = await nats.connect(url)
    publisher = Publisher(nc)
    await publisher.start()
    started = time.monotonic()
    shown = 0.0
    for write in simulation.writes():
        await publisher.write(write)
        if publisher.failures:
            raise RuntimeError(f"JetStream refused a write: {publisher.failures[0]!r}")
        if progress and time.monotonic() - shown > 0.5:
            shown = time.monotonic()
            done = simulation.issue_events
            rate = done / (shown - started)
            print(
                f"\r  generating: {done:,}/{simulation.target_events:,} issue events, "
                f"{simulation.receipts:,} receipts, {rate:,.0f}/s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    await publisher.drain()
    if publisher.failures:
        raise RuntimeError(f"JetStream refused a write: {publisher.failures[0]!r}")
    info = await nc.jetstream().stream_info("EVENTS")
    expected = simulation.issue_events + simulation.receipts
    if info.state.messages != expected:
        raise RuntimeError(f"EVENTS holds {info.state.messages} messages, expected {expected}")
    await nc.close()
    if progress:
        print(f"\n  generated in {time.monotonic() - started:.0f}s", file=sys.stderr)


class GeneratingNats(EmbeddedNats):
    """The embedded server without `sync_interval: always`, only while generating:
    an fsync per single-message write would make generating take many minutes. A
    graceful stop flushes everything; the benchmarks then run with `always`."""

    def write_config(self) -> Path:
        path = super().write_config()
        always = "  sync_interval: always\n"
        assert always in CONFIG_TEMPLATE
        path.write_text(path.read_text().replace(always, ""))
        return path


@dataclass(frozen=True)
class EventLog:
    """A generated log: the data dir (its `nats/` is an embedded server's) and what it holds."""

    data_dir: Path
    outcome: dict[str, Any]

    @property
    def nats_dir(self) -> Path:
        return self.data_dir / "nats"

    def server(self) -> EmbeddedNats:
        return EmbeddedNats(data_dir=self.nats_dir, startup_timeout=300)

    @property
    def issue_events(self) -> int:
        return int(self.outcome["issue_events"])

    @property
    def receipts(self) -> int:
        return int(self.outcome["receipts"])

    def copy_to(self, data_dir: Path) -> Path:
        """A copy of the store in `data_dir/nats`, for a run that will write to it."""
        shutil.copytree(self.nats_dir / "jetstream", data_dir / "nats" / "jetstream")
        return data_dir


def ensure_log(
    data_dir: Path,
    events: int = 1_000_000,
    buurten: int = 200,
    open_per_buurt: int = 200,
    seed: int = 20261121,
    progress: bool = True,
) -> EventLog:
    """The log in `data_dir`, generated unless a matching one is already there."""
    request = {
        "format": FORMAT,
        "events": events,
        "buurten": buurten,
        "open_per_buurt": open_per_buurt,
        "seed": seed,
    }
    described = data_dir / "log.json"
    if described.exists():
        found = json.loads(described.read_text())
        if found.get("request") == request:
            if progress:
                print(f"  reusing the generated log in {data_dir}", file=sys.stderr)
            return EventLog(data_dir, found["outcome"])
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    simulation = Simulation(events, buurten, open_per_buurt, seed)
    with GeneratingNats(data_dir=data_dir / "nats", startup_timeout=300) as server:
        asyncio.run(_publish(server.url, simulation, progress))
    outcome = simulation.outcome()
    described.write_text(json.dumps({"request": request, "outcome": outcome}, indent=1))
    return EventLog(data_dir, outcome)


def organisations_toml() -> str:
    """An organisations file for the generated organisations; token: `bench-<id>`."""
    entries = []
    for org, kind in ORGANISATIONS:
        digest = hashlib.sha256(f"bench-{org}".encode()).hexdigest()
        entries.append(
            f'[[organisation]]\nid = "{org}"\nkind = "{kind}"\nname = "{org}"\n'
            f'token_sha256 = "{digest}"\n'
        )
    return "\n".join(entries)


def buurten_toml(count: int = 200) -> str:
    return "\n".join(
        f'[[buurt]]\ncode = "BU0363{n:04d}"\nname = "Benchbuurt {n}"\n' for n in range(count)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--buurten", type=int, default=200)
    parser.add_argument("--open-per-buurt", type=int, default=200)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--dry-run", action="store_true", help="simulate only, publish nothing")
    args = parser.parse_args()
    if args.dry_run:
        simulation = Simulation(args.events, args.buurten, args.open_per_buurt, 20261121)
        started = time.monotonic()
        messages = sum(len(w) for w in simulation.writes())
        outcome = simulation.outcome()
        opens = sorted(outcome.pop("open_by_buurt").values())
        print(json.dumps(outcome, indent=1))
        print(
            f"messages {messages:,} in {time.monotonic() - started:.1f}s; open per buurt "
            f"min {opens[0]} median {opens[len(opens) // 2]} max {opens[-1]}"
        )
        return
    data = args.data or Path("var/bench") / f"events-{args.events}"
    log = ensure_log(data, args.events, args.buurten, args.open_per_buurt)
    print(json.dumps({k: v for k, v in log.outcome.items() if k != "open_by_buurt"}, indent=1))


if __name__ == "__main__":
    main()
