"""The demo scenario: one residential complex, as the partners would report it.

A caretaker, residents, handhaving and the wijkteam report what they see
around the Dijkgraafplein flats; several report the same thing (the picture
shows one issue with more signals), organisations claim, resolve and hand
over. Seeding publishes exactly as partners do (`intake.<org>.signals`,
`cmd.<org>.<verb>`) and learns issue ids the way partners do, from
`events.<buurt>.>`. Signal refs are fixed, so seeding twice changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy

from events.contract import Location, Reporter, Signal
from services.partner import publish_signal

DEMO_BUURT = "BU0363FD02"  # Dijkgraafplein e.o., Geuzenveld


@dataclass(frozen=True)
class DemoSignal:
    organisation: str
    ref: str
    category: str
    summary: str
    place: str
    address: str
    hours_ago: float
    reporter: Reporter | None = None
    subject_ref: str | None = None

    def signal(self, now: datetime) -> Signal:
        return Signal(
            signal_ref=self.ref,
            buurt=DEMO_BUURT,
            category=self.category,
            summary=self.summary,
            observed_at=now - timedelta(hours=self.hours_ago),
            location=Location(key=self.place, address=self.address),
            reporter=self.reporter,
            subject_ref=self.subject_ref,
        )


@dataclass(frozen=True)
class DemoAction:
    """`organisation` does `verb` to the issue that signal `about` landed on."""

    organisation: str
    verb: str
    about: str
    fields: dict[str, str] = field(default_factory=dict)


CARETAKER = Reporter(role="huismeester")
SIGNALS = (
    DemoSignal(
        "woonzorg",
        "demo-wz-001",
        "grof-vuil",
        "Grof vuil naast de containers bij portiek 12: bank en matrassen",
        "dijkgraafplein-containers",
        "Dijkgraafplein 12",
        50,
        CARETAKER,
    ),
    DemoSignal(
        "bewonersportaal",
        "demo-bp-001",
        "grof-vuil",
        "Bij de containers ligt al dagen een bank en zakken afval",
        "dijkgraafplein-containers",
        "Dijkgraafplein",
        30,
    ),
    DemoSignal(
        "bewonersportaal",
        "demo-bp-002",
        "grof-vuil",
        "Afval bij de containers trekt ratten aan",
        "dijkgraafplein-containers",
        "Dijkgraafplein",
        6,
    ),
    DemoSignal(
        "woonzorg",
        "demo-wz-002",
        "onderhoud",
        "Portiekverlichting kapot, trappenhuis 's avonds donker",
        "dijkgraafplein-12-portiek",
        "Dijkgraafplein 12",
        26,
        CARETAKER,
    ),
    DemoSignal(
        "bewonersportaal",
        "demo-bp-003",
        "overlast",
        "Jongeren hangen 's avonds in de portiek, veel lawaai",
        "dijkgraafplein-12-portiek",
        "Dijkgraafplein 12",
        20,
    ),
    DemoSignal(
        "handhaving-nieuw-west",
        "demo-hh-001",
        "overlast",
        "Derde melding deze week over samenscholing in portiek 12",
        "dijkgraafplein-12-portiek",
        "Dijkgraafplein 12",
        4,
    ),
    DemoSignal(
        "woonzorg",
        "demo-wz-003",
        "eenzaamheid",
        "Oudere bewoner doet niet meer open, post stapelt zich op",
        "dijkgraafplein-14-3",
        "Dijkgraafplein 14-3",
        40,
        CARETAKER,
        "hh-dgp-14-3",
    ),
    DemoSignal(
        "wijkteam-nieuw-west",
        "demo-wt-001",
        "schulden",
        "Huishouden met achterstand in huur en energie, vraagt om hulp",
        "dijkgraafplein-16-1",
        "Dijkgraafplein 16-1",
        72,
        None,
        "hh-dgp-16-1",
    ),
    DemoSignal(
        "buurtwerk-nieuw-west",
        "demo-bw-001",
        "onderhoud",
        "Schommel in de speeltuin achter het complex is kapot",
        "dijkgraafplein-speeltuin",
        "Dijkgraafplein (speeltuin)",
        10,
    ),
)
ACTIONS = (
    DemoAction("woonzorg", "claim", "demo-wz-001"),
    DemoAction("woonzorg", "claim", "demo-wz-002"),
    DemoAction("woonzorg", "resolve", "demo-wz-002", {"resolution": "Lampen vervangen"}),
    DemoAction("woonzorg", "claim", "demo-bp-003"),
    DemoAction("woonzorg", "handover", "demo-bp-003", {"to": "handhaving-nieuw-west"}),
    DemoAction("handhaving-nieuw-west", "accept-handover", "demo-bp-003"),
    DemoAction("wijkteam-nieuw-west", "claim", "demo-wz-003"),
    DemoAction("wijkteam-nieuw-west", "claim", "demo-wt-001"),
    DemoAction("wijkteam-nieuw-west", "handover", "demo-wt-001", {"to": "buurtwerk-nieuw-west"}),
)


@dataclass
class SeedReport:
    published: int = 0
    duplicates: int = 0
    issues: dict[str, str] = field(default_factory=dict)  # signal ref -> issue id
    replies: list[dict[str, Any]] = field(default_factory=list)


async def seed_demo(nc: NATS, timeout: float = 30.0) -> SeedReport:
    """Publish the scenario's signals, wait for their issues, then act on them."""
    report = SeedReport()
    issues = await _follow_issues(nc, report.issues)
    try:
        now = datetime.now(UTC)
        for demo in SIGNALS:
            published = await publish_signal(nc, demo.organisation, demo.signal(now))
            report.published += 1
            report.duplicates += published.duplicate
        await _until(lambda: all(d.ref in report.issues for d in SIGNALS), timeout)
    finally:
        await issues.unsubscribe()
    for action in ACTIONS:
        body = {"issueId": report.issues[action.about], **action.fields}
        reply = await nc.request(
            f"cmd.{action.organisation}.{action.verb}", json.dumps(body).encode(), timeout=timeout
        )
        report.replies.append(
            {"command": f"{action.organisation} {action.verb}", **json.loads(reply.data)}
        )
    return report


async def _follow_issues(nc: NATS, issues: dict[str, str]) -> Any:
    """Learn which issue each signal landed on, from the events as partners see them."""

    async def on_event(msg: Any) -> None:
        event = json.loads(msg.data)
        signal = event.get("signal")
        if event.get("type") in ("IssueOpened", "SignalAttached") and signal:
            issues[signal["signalRef"]] = event["issueId"]

    return await nc.jetstream().subscribe(
        f"events.{DEMO_BUURT}.issue.>",
        cb=on_event,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )


async def _until(condition: Any, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(
                "the demo signals did not all show up as issue events: is `buurtbeeld up` running?"
            )
        await asyncio.sleep(0.05)
