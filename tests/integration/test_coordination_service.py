"""The coordination service on a real nats-server, used exactly as CONTRACT.md tells partners.

Signals go out with plain nats-py on `intake.<org>.signals`; what the service
did is read back where partners read it: `events.<buurt>.>`, `rejected.<org>`
and the replies of `cmd.<org>.<verb>`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from events.jetstream import ensure_streams
from services.coordination.application import Coordination
from services.coordination.index_snapshot import IndexSnapshots
from services.coordination.intake import IntakePlan
from services.coordination.intake_handler import (
    INTAKE_CONSUMER,
    INTAKE_STREAM,
    TRACKING_NAME,
    IntakeConsumer,
)
from services.coordination.intake_pull import ensure_intake_consumer
from services.coordination.intake_reading import MAX_SIGNAL_BYTES
from services.coordination.service import coordination_service
from services.embedded_nats import EmbeddedNats
from services.registries import DEFAULT_CATEGORIES, Registries
from services.settings import Settings
from services.streams import ensure_intake_stream
from tests.integration.partner_support import PATIENCE, Partner, until
from tests.unit.test_contract import CONTRACT_EXAMPLE
from tests.unit.test_coordination import BUURT, BUURTEN, ORGANISATIONS, OTHER_BUURT

REGISTRIES = Registries(
    organisations=ORGANISATIONS,
    categories=DEFAULT_CATEGORIES,
    buurten=BUURTEN,
    organisations_source="tests",
)
EXAMPLE: dict[str, Any] = json.loads(CONTRACT_EXAMPLE)


def signal(
    ref: str, place: str | None = "louweshoek-parkeerplaats", **changes: Any
) -> dict[str, Any]:
    """The contract's example body, with its own `signalRef` and place."""
    body = {**EXAMPLE, "signalRef": ref, **changes}
    if place is None:
        del body["location"]
    else:
        body["location"] = {**EXAMPLE["location"], "key": place}
    return body


def store_env(tmp_path: Path, nats_url: str) -> dict[str, str]:
    return Settings(data_dir=tmp_path).eventsourcing_env(nats_url)


@asynccontextmanager
async def running(tmp_path: Path, nats_url: str) -> AsyncIterator[Coordination]:
    """The coordination service, as `buurtbeeld up` runs it."""
    async with coordination_service(
        nats_url=nats_url,
        eventsourcing_env=store_env(tmp_path, nats_url),
        registries=REGISTRIES,
        escalation_interval=timedelta(hours=1),
        nats_timeout=10,
    ) as app:
        yield app


def as_partner(
    server: EmbeddedNats, tmp_path: Path, story: Callable[[Partner], Awaitable[None]]
) -> None:
    """Run `story` with the INTAKE and EVENTS streams in place, as a partner connected to them."""

    async def main() -> None:
        nc = await nats.connect(server.url)
        try:
            await ensure_intake_stream(nc, Settings(data_dir=tmp_path))
            await asyncio.to_thread(ensure_streams, store_env(tmp_path, server.url))
            partner = Partner(nc)
            await partner.listen_for_rejections()
            await story(partner)
        finally:
            await nc.close()

    asyncio.run(main())


def types(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [body["type"] for _, body in events]


def test_signals_open_an_issue_attach_to_it_and_a_late_resend_changes_nothing(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async def story(partner: Partner) -> None:
        async with running(tmp_path, nats_server.url):
            # A caretaker reports grof vuil at the parking place.
            await partner.signal("woonzorg", signal("wz-2026-000123"))
            await partner.processed()

            # It is an issue now, under events.<buurt>.>, as the contract's JSON.
            [(subject, opened)] = await partner.events(f"events.{BUURT}.>")
            issue_id = opened["issueId"]
            assert subject == f"events.{issue_id}"
            assert issue_id.startswith(f"{BUURT}.issue.")
            assert opened["type"] == "IssueOpened"
            assert (opened["buurt"], opened["category"], opened["sensitivity"]) == (
                BUURT,
                "grof-vuil",
                "open",
            )
            assert opened["organisation"] == "woonzorg"
            assert opened["signal"]["signalRef"] == "wz-2026-000123"
            assert opened["signal"]["location"]["key"] == "louweshoek-parkeerplaats"

            # The same signal again, long after JetStream's duplicate window (another
            # message id gets it past JetStream): nothing changes.
            await partner.publish("woonzorg", signal("wz-2026-000123"), "woonzorg/resent-later")
            # A resident reports the same place: it attaches to the issue.
            await partner.signal("bewonersportaal", signal("bp-77"))
            # Somewhere else: another issue.
            await partner.signal("woonzorg", signal("wz-2026-000124", place="speeltuin"))
            await partner.processed()

            events = await partner.events(f"events.{BUURT}.>")
            assert types(events) == ["IssueOpened", "SignalAttached", "IssueOpened"]
            attached = events[1][1]
            assert (attached["issueId"], attached["organisation"]) == (issue_id, "bewonersportaal")
            assert events[2][1]["issueId"] != issue_id
            assert not partner.rejections

    as_partner(nats_server, tmp_path, story)


def test_each_invalid_signal_gets_one_rejection_with_reasons_and_nothing_else_changes(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async def story(partner: Partner) -> None:
        async with running(tmp_path, nats_server.url):
            await partner.signal("woonzorg", signal("wz-1"))
            await partner.processed()
            before = await partner.events("events.>")

            # Everything CONTRACT.md says is rejected, each on rejected.<org>.
            await partner.publish("woonzorg", b'{"signalRef": "wz-2", "buurt": ', "woonzorg/a")
            await partner.publish("woonzorg", b'{"signalRef": "wz-\xff"}', "woonzorg/b")
            await partner.publish("woonzorg", b"[]", "woonzorg/c")
            missing = {k: v for k, v in signal("wz-3").items() if k != "summary"}
            await partner.signal("woonzorg", missing)
            await partner.signal("woonzorg", signal("wz-4", category="vuurwerk"))
            await partner.signal("woonzorg", signal("wz-5", buurt="BU0363ZZ99"))
            await partner.signal("woonzorg", signal("wz-6", buurt="Lutkemeer"))
            await partner.signal("woonzorg", signal("wz-7", padding="x" * MAX_SIGNAL_BYTES))
            await partner.signal("onbekend", signal("ob-1"))
            await partner.signal("ouder-kindteam-osdorp", signal("ok-1"))  # only in OTHER_BUURT
            await partner.processed()

            rejected = await partner.rejected("woonzorg", 8)
            assert [r["signalRef"] for r in rejected] == [
                None,
                None,
                None,
                "wz-3",
                "wz-4",
                "wz-5",
                "wz-6",
                None,
            ]
            reasons = [" ".join(r["reasons"]) for r in rejected]
            assert "not valid JSON" in reasons[0]
            assert "UTF-8" in reasons[1]
            assert "Expected `object`, got `array`" in reasons[2]
            assert "summary" in reasons[3]
            assert "category 'vuurwerk'" in reasons[4]
            assert "BU0363ZZ99" in reasons[5]
            assert "`$.buurt`" in reasons[6]
            assert "bytes" in reasons[7]
            [unknown] = await partner.rejected("onbekend", 1)
            assert unknown == {
                "signalRef": "ob-1",
                "reasons": ["organisation 'onbekend' is not in the organisations file"],
            }
            [elsewhere] = await partner.rejected("ouder-kindteam-osdorp", 1)
            assert elsewhere["reasons"] == [
                f"organisation ouder-kindteam-osdorp is not active in buurt {BUURT}"
            ]

            # Nothing else changed, and the service carries on.
            assert await partner.events("events.>") == before
            await partner.signal("ouder-kindteam-osdorp", signal("ok-2", buurt=OTHER_BUURT))
            await partner.processed()
            assert types(await partner.events(f"events.{OTHER_BUURT}.>")) == ["IssueOpened"]
            assert len(partner.rejections["woonzorg"]) == 8

    as_partner(nats_server, tmp_path, story)


def test_a_signal_the_service_fails_to_process_is_rejected_and_holds_up_nothing(
    nats_server: EmbeddedNats, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    take = IntakePlan.take

    def faulty(plan: IntakePlan, organisation: str, signal: Any) -> Any:
        if signal.signal_ref == "wz-fault":
            raise RuntimeError("a fault of ours")
        return take(plan, organisation, signal)

    async def story(partner: Partner) -> None:
        async with running(tmp_path, nats_server.url):
            monkeypatch.setattr(IntakePlan, "take", faulty)
            await partner.signal("woonzorg", signal("wz-1"))
            await partner.signal("woonzorg", signal("wz-fault", place="louweshoek-portiek"))
            await partner.signal("woonzorg", signal("wz-2"))
            await partner.processed()
            [rejection] = await partner.rejected("woonzorg", 1)
            assert rejection["signalRef"] == "wz-fault"
            assert "could not process this signal (RuntimeError)" in rejection["reasons"][0]
            assert types(await partner.events(f"events.{BUURT}.>")) == [
                "IssueOpened",
                "SignalAttached",
            ]
            # The service carries on.
            await partner.signal("woonzorg", signal("wz-3", place="louweshoek-speeltuin"))
            await partner.processed()
            assert types(await partner.events(f"events.{BUURT}.>"))[-1] == "IssueOpened"
            assert len(partner.rejections["woonzorg"]) == 1

    as_partner(nats_server, tmp_path, story)


def test_a_running_service_keeps_a_snapshot_each_time_the_log_has_grown_enough(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    snapshots = IndexSnapshots(tmp_path / "open-issues.snapshot")

    async def story(partner: Partner) -> None:
        async with coordination_service(
            nats_url=nats_server.url,
            eventsourcing_env=store_env(tmp_path, nats_server.url),
            registries=REGISTRIES,
            escalation_interval=timedelta(hours=1),
            nats_timeout=10,
            index_snapshots=snapshots,
            snapshot_after=6,
            snapshot_check_seconds=0.05,
        ) as app:
            await partner.signal("woonzorg", signal("wz-1", place="plek-1"))
            await partner.processed()
            await asyncio.sleep(0.3)  # two events (an issue opened, its receipt): too few
            assert snapshots.load() is None
            for n in (2, 3):
                await partner.signal("woonzorg", signal(f"wz-{n}", place=f"plek-{n}"))
            await partner.processed()

            async def kept() -> bool:
                return (snapshot := snapshots.load()) is not None and len(snapshot.issues) == 3

            await until(kept, "a snapshot of the three open issues")
            snapshot = snapshots.load()
            assert snapshot is not None and snapshot.position >= 6 and app.followed >= 6

    as_partner(nats_server, tmp_path, story)


def test_commands_are_answered_as_the_contract_says_with_every_refusal_code(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async def story(partner: Partner) -> None:
        async with running(tmp_path, nats_server.url):
            await partner.signal("woonzorg", signal("wz-1"))
            await partner.signal("woonzorg", signal("wz-2", place="speeltuin"))
            await partner.processed()
            first, second = [
                body["issueId"]
                for _, body in await partner.events("events.>")
                if body["type"] == "IssueOpened"  # not the receipts beside them
            ]

            # Claimed: the reply names the issue and its new version.
            assert await partner.request("woonzorg", "claim", {"issueId": first}) == {
                "ok": True,
                "issueId": first,
                "version": 2,
            }
            # Every refusal, with its code.
            refusals = {
                "already-owned": ("stadgenoot", "claim", {"issueId": first}),
                "not-owner": ("stadgenoot", "release", {"issueId": first}),
                "not-found": ("woonzorg", "claim", {"issueId": f"{BUURT}.issue.nope"}),
                "invalid": ("woonzorg", "handover", {"issueId": first}),  # `to` missing
                "forbidden": ("onbekend", "claim", {"issueId": first}),
            }
            for code, (organisation, verb, body) in refusals.items():
                reply = await partner.request(organisation, verb, body)
                assert (reply["ok"], reply["code"]) == (False, code), reply
                assert set(reply) == {"ok", "code", "message"} and reply["message"]
            for organisation, verb, body in [
                ("woonzorg", "fly", {"issueId": first}),
                ("woonzorg", "claim", b"{not json"),
                ("woonzorg", "claim", b"\xff"),
                (
                    "woonzorg",
                    "claim",
                    b'{"issueId": "x", "y": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
                ),
                ("woonzorg", "resolve", {"issueId": first, "resolution": ""}),
            ]:
                assert (await partner.request(organisation, verb, body))["code"] == "invalid"
            assert (await partner.request("ouder-kindteam-osdorp", "claim", {"issueId": first}))[
                "code"
            ] == "forbidden"

            # The verbs with fields: a handover accepted, resolved, reopened, merged.
            steps = [
                ("woonzorg", "handover", {"issueId": first, "to": "wijkteam-nieuw-west"}),
                ("wijkteam-nieuw-west", "accept-handover", {"issueId": first}),
                ("wijkteam-nieuw-west", "resolve", {"issueId": first, "resolution": "Opgehaald"}),
                ("stadgenoot", "reopen", {"issueId": first, "reason": "Weer vuil"}),
                ("stadgenoot", "merge", {"issueId": second, "into": first}),
            ]
            for organisation, verb, body in steps:
                reply = await partner.request(organisation, verb, body)
                assert reply["ok"] is True, (verb, reply)

            events = await partner.events(f"events.{first}")
            assert types(events) == [
                "IssueOpened",
                "OwnershipClaimed",
                "HandoverOffered",
                "HandoverAccepted",
                "IssueResolved",
                "IssueReopened",
                "IssueAbsorbed",
            ]
            assert events[2][1]["to"] == "wijkteam-nieuw-west"

    as_partner(nats_server, tmp_path, story)


def test_restarted_mid_stream_every_signal_is_processed_exactly_once(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    places, waiting, later = 100, 3000, 300

    async def publish(partner: Partner, refs: range, resent: bool = False) -> None:
        async def one(n: int) -> None:
            body = signal(f"wz-{n}", place=f"plek-{n % places}")
            msg_id = f"woonzorg/wz-{n}" + ("/again" if resent else "")
            await partner.publish("woonzorg", body, msg_id)

        for chunk in range(refs.start, refs.stop, refs.step * 200):
            await asyncio.gather(*(one(n) for n in range(chunk, refs.stop, refs.step)[:200]))

    async def floor(partner: Partner) -> int:
        info = await partner.js.consumer_info(INTAKE_STREAM, INTAKE_CONSUMER)
        return info.ack_floor.stream_seq if info.ack_floor else 0

    async def story(partner: Partner) -> None:
        # Signals wait on INTAKE; the service starts, and is stopped as soon as the
        # first of its events appears: while busy with the rest.
        await publish(partner, range(waiting))
        first_event = asyncio.Event()

        async def seen(msg: Msg) -> None:
            first_event.set()

        watching = await partner.nc.subscribe(f"events.{BUURT}.>", cb=seen)
        async with running(tmp_path, nats_server.url):
            await asyncio.wait_for(first_event.wait(), PATIENCE)
        await watching.unsubscribe()
        assert 0 < await floor(partner) < waiting
        # More arrive while it is down, and some are sent again, past JetStream's window.
        await publish(partner, range(waiting, waiting + later))
        await publish(partner, range(0, waiting + later, 50), resent=True)

        # Started again: it carries on where it was.
        async with running(tmp_path, nats_server.url) as app:
            await partner.processed()
            assert app.recorder.max_tracking_id(TRACKING_NAME) == partner.last_sequence

        # Every signal is accounted for exactly once: issues opened + signals attached.
        events = await partner.events(f"events.{BUURT}.>")
        refs = sorted(int(body["signal"]["signalRef"][3:]) for _, body in events)
        assert refs == list(range(waiting + later))
        assert types(events).count("IssueOpened") == places
        assert not partner.rejections

        # Everything delivered once more, as after a crash that lost every ack:
        # all of it is at or below the tracked position, so nothing changes.
        await partner.js.delete_consumer(INTAKE_STREAM, INTAKE_CONSUMER)
        async with running(tmp_path, nats_server.url):
            await partner.processed()
            await partner.signal("stadgenoot", signal("sg-1", place="plek-1"))
            await partner.processed()
        after = await partner.events(f"events.{BUURT}.>")
        assert after[:-1] == events
        assert types(after)[-1] == "SignalAttached"
        assert not partner.rejections

    as_partner(nats_server, tmp_path, story)


async def ten_signals_on_intake(partner: Partner) -> JetStreamContext.PullSubscription:
    """Ten signals on INTAKE and the durable consumer bound, for a test to fetch by hand."""
    await ensure_intake_consumer(partner.js, timeout=10)
    for n in range(10):
        await partner.signal("woonzorg", signal(f"wz-{n}", place=f"plek-{n}"))
    return await partner.js.pull_subscribe_bind(INTAKE_CONSUMER, stream=INTAKE_STREAM)


async def coordination_on(tmp_path: Path, nats_url: str) -> Coordination:
    """The application on the store of `store_env`, built in a worker thread."""
    return await asyncio.to_thread(
        lambda: Coordination(
            store_env(tmp_path, nats_url),
            organisations=ORGANISATIONS,
            categories=DEFAULT_CATEGORIES,
            buurten=BUURTEN,
        )
    )


def test_a_batch_done_before_an_earlier_one_does_not_move_the_position_past_it(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # Without the broker: the durable consumer's deliveries handed to intake by hand.
    async def story(partner: Partner) -> None:
        subscription = await ten_signals_on_intake(partner)
        earlier = await subscription.fetch(4, timeout=10)
        later = await subscription.fetch(6, timeout=10)
        app = await coordination_on(tmp_path, nats_server.url)
        try:
            intake = IntakeConsumer(app, partner.nc.publish)

            # The later batch is saved while the earlier one is outstanding (its save
            # failed, or the run that had it crashed): the position stays below it.
            await intake.receive(later, partner.js)
            assert app.recorder.max_tracking_id(TRACKING_NAME) is None

            # Once the earlier one is done too, everything is.
            await intake.receive(earlier, partner.js)
            assert app.recorder.max_tracking_id(TRACKING_NAME) == 10
            assert len(app.open_issues) == 10
        finally:
            await asyncio.to_thread(app.close)

    as_partner(nats_server, tmp_path, story)


def test_while_the_event_store_is_down_signals_wait_and_then_are_processed_once(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # The event store on a nats-server of its own, which goes away for a while.
    store = EmbeddedNats(data_dir=tmp_path / "store")

    async def story(partner: Partner) -> None:
        async with coordination_service(
            nats_url=nats_server.url,
            eventsourcing_env=env,
            registries=REGISTRIES,
            escalation_interval=timedelta(hours=1),
        ):
            await asyncio.to_thread(store.stop)
            await partner.signal("woonzorg", signal("wz-1"))

            # Saving fails; the batch is delivered again, and again.
            async def redelivered() -> bool:
                info = await partner.js.consumer_info(INTAKE_STREAM, INTAKE_CONSUMER)
                return (info.num_redelivered or 0) >= 1

            await until(redelivered, "intake's batch delivered again")

            # The store is back: the signal is processed, once.
            restarted = EmbeddedNats(data_dir=store.data_dir, port=store.port)
            await asyncio.to_thread(restarted.start)
            try:
                await partner.processed()
                store_nc = await nats.connect(restarted.url)
                try:
                    events = await Partner(store_nc).events("events.>")
                finally:
                    await store_nc.close()
                assert types(events) == ["IssueOpened", "SignalReceived"]
            finally:
                await asyncio.to_thread(restarted.stop)

    with store:
        env = Settings(data_dir=tmp_path, nats_timeout=1.0).eventsourcing_env(store.url)
        ensure_streams(env)
        as_partner(nats_server, tmp_path, story)
