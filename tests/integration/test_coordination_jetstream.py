"""The coordination application on the JetStream event store, as partners and operators see it.

Every story of tests/unit/test_coordination.py runs here again on JetStream
(`TestOnJetStream`); the tests below are what only a real store shows: where
events land, atomic writes with the intake position, restarts, crashes and
several instances at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from hashlib import sha256
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext

from events.contract import Accepted, Claim, Resolve, codec
from services.coordination.application import MAX_SIGNALS_PER_SAVE, Coordination
from services.coordination.outcomes import Outcome, OutcomeKind
from services.coordination.refusals import Refusal
from services.embedded_nats import EmbeddedNats
from tests.integration.jetstream_support import fresh_store_env
from tests.unit.test_coordination import (
    T0,
    Clock,
    CoordinationStories,
    at,
    coordination,
    kinds,
    opened,
    signal,
)


class TestOnJetStream(CoordinationStories):
    @pytest.fixture
    def env(self, shared_nats: EmbeddedNats) -> dict[str, str]:
        return fresh_store_env(shared_nats.url)


def read(nats_url: str, call: Callable[[JetStreamContext], Awaitable[Any]]) -> Any:
    """`call(js)` on a plain nats-py connection, as a partner would."""

    async def main() -> Any:
        nc = await nats.connect(nats_url)
        try:
            return await call(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


def last_sequence(nats_url: str, stream: str) -> int:
    info = read(nats_url, lambda js: js.stream_info(stream))
    return int(info.state.last_seq)


def test_events_are_the_contract_json_under_the_buurt_and_receipts_beside_it(
    shared_nats: EmbeddedNats,
) -> None:
    env = fresh_store_env(shared_nats.url)
    prefix, stream = env["NATS_SUBJECT_PREFIX"], env["NATS_STREAM"]
    with coordination(env, Clock()) as app:
        issue_id = opened(app, "wz-2026-000123")
        app.handle("woonzorg", "claim", Claim(issue_id=issue_id, actor="J. de Vries"))

    # The issue's last event, read as any partner subscribed to events.<buurt>.> reads it.
    msg = read(shared_nats.url, lambda js: js.get_last_msg(stream, f"{prefix}.{issue_id}"))
    assert msg.subject == f"{prefix}.{issue_id}"
    assert issue_id.startswith("BU0363FF03.issue.")
    assert msg.headers["Es-Topic"] == "OwnershipClaimed"
    assert msg.headers["Es-Version"] == "2"
    assert json.loads(msg.data) == {
        "type": "OwnershipClaimed",
        "issueId": issue_id,
        "buurt": "BU0363FF03",
        "category": "grof-vuil",
        "at": "2026-11-20T09:30:00Z",
        "organisation": "woonzorg",
        "actor": "J. de Vries",
    }
    assert type(codec.issue_event_decoder.decode(msg.data)).__name__ == "OwnershipClaimed"

    # The receipt lives at receipts.<org>.<hash>, outside every buurt.
    digest = sha256(b"wz-2026-000123").hexdigest()[:40]
    subject = f"{prefix}.receipts.woonzorg.{digest}"
    receipt = read(shared_nats.url, lambda js: js.get_last_msg(stream, subject))
    body = codec.receipt_decoder.decode(receipt.data)
    assert (body.organisation, body.signal_ref, body.issue_id) == (
        "woonzorg",
        "wz-2026-000123",
        issue_id,
    )


def test_events_and_the_intake_position_are_one_atomic_write(shared_nats: EmbeddedNats) -> None:
    env = fresh_store_env(shared_nats.url)
    prefix, stream = env["NATS_SUBJECT_PREFIX"], env["NATS_STREAM"]
    with coordination(env, Clock()) as app:
        # Three signals from intake up to its position 7: their events, receipts and position.
        signals = [("woonzorg", signal(f"wz-{n}", key=f"plek-{n}")) for n in range(3)]
        app.receive(signals, at("Intake", 7))
        assert app.recorder.max_tracking_id("Intake") == 7
        assert last_sequence(shared_nats.url, stream) == 3 * 2 + 1
        tracked = read(shared_nats.url, lambda js: js.get_msg(stream, 7))
        assert (tracked.subject, tracked.data) == (f"{prefix}-tracking.Intake", b"7")

        # A write that clashes (wz-0 has a receipt) is refused whole, then redone
        # without the duplicate: nothing of the first attempt is stored.
        outcomes = app.receive(
            [("woonzorg", signal("wz-0", key="plek-0")), ("woonzorg", signal("wz-9"))],
            at("Intake", 9),
        )
        assert kinds(outcomes) == ["duplicate", "opened"]
        assert last_sequence(shared_nats.url, stream) == 7 + 2 + 1
        assert app.recorder.max_tracking_id("Intake") == 9


def test_a_second_instance_rebuilds_the_open_issues_from_the_log(
    shared_nats: EmbeddedNats,
) -> None:
    env = fresh_store_env(shared_nats.url)
    clock = Clock()
    with coordination(env, clock) as first:
        parking = opened(first, "wz-1")
        playground = opened(first, "wz-2", key="speeltuin")
        opened(first, "wz-3", key=None)
        first.handle("woonzorg", "claim", Claim(issue_id=playground))
        first.handle("woonzorg", "resolve", Resolve(issue_id=playground, resolution="opgeruimd"))

    # Restarted: the open issues are what the log says, the resolved one is not among them.
    with coordination(env, clock) as second:
        assert len(second.open_issues) == 2
        outcomes = second.receive(
            [("bewonersportaal", signal("bp-1")), ("bewonersportaal", signal("bp-2", "speeltuin"))]
        )
        assert kinds(outcomes) == ["attached", "opened"]
        assert outcomes[0].issue_id == parking

        # Running side by side, each sees what the other stored.
        with coordination(env, clock) as third:
            [attached] = third.receive([("stadgenoot", signal("sg-1", "speeltuin"))])
            assert attached.issue_id == outcomes[1].issue_id
            [again] = second.receive([("stadgenoot", signal("sg-2", "speeltuin"))])
            assert (again.kind, again.issue_id) == (OutcomeKind.ATTACHED, attached.issue_id)
            assert second.get_issue(attached.issue_id or "").signal_count == 3


def test_a_redelivery_after_a_crash_is_processed_exactly_once(shared_nats: EmbeddedNats) -> None:
    env = fresh_store_env(shared_nats.url)
    stream = env["NATS_STREAM"]
    total = MAX_SIGNALS_PER_SAVE + 50
    signals = [("woonzorg", signal(f"wz-{n}", key=f"plek-{n % 100}")) for n in range(total)]

    # The first run saved its first write, then died before the last one (with the position).
    with coordination(env, Clock()) as crashed:
        crashed.receive(signals[:MAX_SIGNALS_PER_SAVE])

    # Restarted, intake redelivers everything after the last position it saved: none.
    with coordination(env, Clock()) as restarted:
        assert restarted.recorder.max_tracking_id("Intake") is None
        outcomes = restarted.receive(signals, at("Intake", total))
        assert kinds(outcomes) == ["duplicate"] * MAX_SIGNALS_PER_SAVE + ["attached"] * 50
        assert restarted.recorder.max_tracking_id("Intake") == total

        # Redelivered once more (the ack was lost too): nothing at all is written.
        stored = last_sequence(shared_nats.url, stream)
        assert kinds(restarted.receive(signals, at("Intake", total))) == ["duplicate"] * total
        assert last_sequence(shared_nats.url, stream) == stored

        # Every signal is accounted for exactly once.
        issues = [restarted.get_issue(issue.id) for issue in restarted.open_issues]
        assert len(issues) == 100
        assert sum(issue.signal_count for issue in issues) == total


def test_concurrent_claims_from_two_instances_leave_one_owner(shared_nats: EmbeddedNats) -> None:
    env = fresh_store_env(shared_nats.url)
    with coordination(env, Clock()) as app:
        issue_id = opened(app)

    # Both load the unowned issue before either saves its claim.
    together = threading.Barrier(2, timeout=30)
    results: dict[str, object] = {}

    def claim(app: Coordination, organisation: str) -> None:
        try:
            results[organisation] = app.handle(organisation, "claim", Claim(issue_id=issue_id))
        except Refusal as refusal:
            results[organisation] = refusal.code

    with (
        coordination(env, OnceTogether(together)) as one,
        coordination(env, OnceTogether(together)) as two,
    ):
        threads = [
            threading.Thread(target=claim, args=(one, "woonzorg")),
            threading.Thread(target=claim, args=(two, "stadgenoot")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        # One claim is accepted; the other, retried on the fresh issue, is already-owned.
        [winner] = [org for org, result in results.items() if isinstance(result, Accepted)]
        assert [r for r in results.values() if not isinstance(r, Accepted)] == ["already-owned"]
        events = [type(e).__name__ for e in one.events.get(issue_id)]
        assert events == ["IssueOpened", "OwnershipClaimed"]
        assert one.get_issue(issue_id).owner == two.get_issue(issue_id).owner == winner


def test_two_instances_receiving_one_signal_at_once_process_it_once(
    shared_nats: EmbeddedNats,
) -> None:
    env = fresh_store_env(shared_nats.url)
    together = threading.Barrier(2, timeout=30)
    results: dict[str, list[Outcome]] = {}

    def receive(app: Coordination, name: str) -> None:
        results[name] = app.receive([("woonzorg", signal("wz-1"))])

    with (
        coordination(env, OnceTogether(together)) as one,
        coordination(env, OnceTogether(together)) as two,
    ):
        threads = [
            threading.Thread(target=receive, args=(one, "one")),
            threading.Thread(target=receive, args=(two, "two")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    # Both planned to open an issue; the receipt let only one of them store it.
    [first], [second] = results["one"], results["two"]
    assert sorted([first.kind.value, second.kind.value]) == ["duplicate", "opened"]
    assert first.issue_id == second.issue_id
    with coordination(env, Clock()) as app:
        assert [issue.id for issue in app.open_issues] == [first.issue_id]


def test_two_instances_attaching_to_one_issue_at_once_both_count(
    shared_nats: EmbeddedNats,
) -> None:
    env = fresh_store_env(shared_nats.url)
    with coordination(env, Clock()) as app:
        issue_id = opened(app)
    together = threading.Barrier(2, timeout=30)
    results: dict[str, list[Outcome]] = {}

    def receive(app: Coordination, organisation: str) -> None:
        results[organisation] = app.receive([(organisation, signal(f"{organisation}-1"))])

    # Both hold the issue at version 1 and attach to it; one save clashes, is redone on
    # the stored issue, and attaches as version 3.
    with (
        coordination(env, OnceTogether(together)) as one,
        coordination(env, OnceTogether(together)) as two,
    ):
        threads = [
            threading.Thread(target=receive, args=(one, "stadgenoot")),
            threading.Thread(target=receive, args=(two, "bewonersportaal")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert [(o.kind, o.issue_id) for [o] in results.values()] == [
            (OutcomeKind.ATTACHED, issue_id)
        ] * 2
        issue = one.get_issue(issue_id)
        assert (issue.version, issue.signal_count) == (3, 3)
        assert issue.reporters == {"woonzorg", "stadgenoot", "bewonersportaal"}


class OnceTogether:
    """A clock whose first reading waits for the other instance's: both act on what they loaded."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier
        self.read = False

    def __call__(self) -> datetime:
        if not self.read:
            self.read = True
            self.barrier.wait()
        return T0
