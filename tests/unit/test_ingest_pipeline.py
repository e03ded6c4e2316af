"""Intake's pipeline: chunk n + 1 is planned while chunk n is saved.

Whatever happens to a save in flight, the store holds the chunks in order, a
prefix of them when one fails, and the tracking only with the last; the open
issues held in memory are what is stored; every signal is processed once.
`PipelineStories` run on the library's in-memory store here, and on JetStream
in tests/integration/test_ingest_pipeline.py.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from events.contract import Claim, Signal
from services.coordination.application import MAX_SIGNALS_PER_SAVE, Coordination
from services.coordination.intake import IntakePlan
from services.coordination.mapper import issue_mapper
from services.coordination.outcomes import Outcome
from services.coordination.receipt import Receipt
from tests.unit.test_coordination import Clock, at, coordination, kinds, signal

CHUNKS = 4
PLACES = 150


def batch(count: int, prefix: str = "wz", places: int = PLACES) -> list[tuple[str, object]]:
    return [("woonzorg", signal(f"{prefix}-{n}", key=f"plek-{n % places}")) for n in range(count)]


def many() -> int:
    return MAX_SIGNALS_PER_SAVE * (CHUNKS - 1) + 7


class Saves:
    """Wraps the application's saves: counts them and runs `before(n)` ahead of save n."""

    def __init__(self, app: Coordination, before: Callable[[int], None]) -> None:
        self.app, self.before = app, before
        self.calls = 0
        self._store = app._store
        app._store = self  # type: ignore[method-assign]

    def __call__(self, prepared: Any) -> list[int]:
        self.calls += 1
        self.before(self.calls)
        return self._store(prepared)


def stored_signal_refs(app: Coordination) -> Counter[str]:
    """How often each signal ref is in a stored IssueOpened or SignalAttached."""
    refs: Counter[str] = Counter()
    for notification in app.recorder.select_notifications(start=1, limit=1_000_000):
        if notification.topic in ("IssueOpened", "SignalAttached"):
            refs[json.loads(notification.state)["signal"]["signalRef"]] += 1
    return refs


def assert_held_issues_are_stored(app: Coordination) -> None:
    for issue in app.open_issues:
        stored = app.get_issue(issue.id)
        assert (issue.version, issue.signal_count) == (stored.version, stored.signal_count)
        assert not issue.pending_events


class PipelineStories:
    @pytest.fixture
    def env(self) -> dict[str, str]:
        raise NotImplementedError

    @pytest.fixture
    def app(self, env: dict[str, str]) -> Iterator[Coordination]:
        app = coordination(env, Clock())
        try:
            yield app
        finally:
            app.close()

    def test_chunks_are_stored_in_order_and_only_the_last_carries_the_tracking(
        self, app: Coordination
    ) -> None:
        positions: list[int | None] = []
        Saves(app, lambda n: positions.append(app.recorder.max_tracking_id("Intake")))
        signals = batch(many())
        outcomes = app.receive(signals, at("Intake", 10))
        assert kinds(outcomes) == ["opened"] * PLACES + ["attached"] * (many() - PLACES)
        assert [o.signal_ref for o in outcomes] == [s.signal_ref for _, s in signals]
        # No position was stored before the last save, which stored it.
        assert positions == [None] * CHUNKS
        assert app.recorder.max_tracking_id("Intake") == 10
        # In the log chunk after chunk, as received: each signal once.
        chunk_of = {s.signal_ref: n // MAX_SIGNALS_PER_SAVE for n, (_, s) in enumerate(signals)}
        refs = [
            json.loads(n.state)["signal"]["signalRef"]
            for n in app.recorder.select_notifications(start=1, limit=1_000_000)
            if n.topic in ("IssueOpened", "SignalAttached")
        ]
        assert sorted(refs) == sorted(chunk_of)
        assert [chunk_of[ref] for ref in refs] == sorted(chunk_of[ref] for ref in refs)
        assert len(app.open_issues) == PLACES
        assert_held_issues_are_stored(app)

    def test_a_save_that_clashes_is_done_again_and_nothing_is_lost_or_doubled(
        self, app: Coordination
    ) -> None:
        first = app.receive(batch(PLACES, prefix="earlier"))
        claimed = first[0].issue_id
        assert claimed is not None

        def claim_first(n: int) -> None:
            # While chunk 2 waits to be saved, someone claims an issue it attaches to.
            if n == 2:
                app.handle("stadgenoot", "claim", Claim(issue_id=claimed))

        saves = Saves(app, claim_first)
        outcomes = app.receive(batch(many()), at("Intake", 20))
        # Chunk 2 clashed and was done again the careful way (not through the pipeline).
        assert saves.calls == CHUNKS
        assert kinds(outcomes) == ["attached"] * many()
        assert app.recorder.max_tracking_id("Intake") == 20
        assert app.get_issue(claimed).owner == "stadgenoot"
        refs = stored_signal_refs(app)
        assert set(refs.values()) == {1}
        assert len(refs) == PLACES + many()
        assert_held_issues_are_stored(app)

    @pytest.mark.parametrize("failing", [1, 2, CHUNKS])
    def test_a_save_that_fails_stores_a_prefix_no_tracking_and_a_retry_completes_it(
        self, app: Coordination, failing: int
    ) -> None:
        def store_down(n: int) -> None:
            if n == failing:
                raise OperationalError("the event store is away")

        saves = Saves(app, store_down)
        signals = batch(many())
        with pytest.raises(OperationalError):
            app.receive(signals, at("Intake", 40))
        assert app.recorder.max_tracking_id("Intake") is None
        saved = stored_signal_refs(app)
        prefix = signals[: MAX_SIGNALS_PER_SAVE * (failing - 1)]
        assert sorted(saved) == sorted(s.signal_ref for _, s in prefix)
        assert_held_issues_are_stored(app)

        # Delivered again: what was saved is a duplicate, the rest is processed, once.
        saves.before = lambda n: None
        outcomes = app.receive(signals, at("Intake", 40))
        done = MAX_SIGNALS_PER_SAVE * (failing - 1)
        assert kinds(outcomes)[:done] == ["duplicate"] * done
        assert "duplicate" not in kinds(outcomes)[done:]
        assert app.recorder.max_tracking_id("Intake") == 40
        refs = stored_signal_refs(app)
        assert set(refs.values()) == {1} and len(refs) == many()
        assert len(app.open_issues) == PLACES
        assert_held_issues_are_stored(app)

    @pytest.mark.parametrize("count", [12, many()], ids=["one-chunk", "pipelined"])
    def test_a_signal_whose_planning_raises_is_refused_and_holds_up_nothing(
        self, app: Coordination, monkeypatch: pytest.MonkeyPatch, count: int
    ) -> None:
        take = IntakePlan.take

        def faulty(plan: IntakePlan, organisation: str, signal: Signal) -> Outcome:
            if signal.signal_ref.startswith("fault"):
                raise RuntimeError("a fault of ours")
            return take(plan, organisation, signal)

        monkeypatch.setattr(IntakePlan, "take", faulty)
        signals = batch(count)
        faulty_at = {1, count - 2} if count < MAX_SIGNALS_PER_SAVE else {3, 520, 1200}
        for n in faulty_at:
            signals[n] = ("woonzorg", signal(f"fault-{n}", key=f"plek-{n % PLACES}"))
        outcomes = app.receive(signals, at("Intake", 60))

        assert [o.signal_ref for o in outcomes] == [s.signal_ref for _, s in signals]
        refused = {n for n, o in enumerate(outcomes) if not o.accepted}
        assert refused == faulty_at
        for n in faulty_at:
            assert "could not process this signal (RuntimeError)" in outcomes[n].reasons[0]
        # Everything else stored once, the position with the last chunk; held = stored.
        assert app.recorder.max_tracking_id("Intake") == 60
        refs = stored_signal_refs(app)
        assert set(refs) == {s.signal_ref for n, (_, s) in enumerate(signals) if n not in refused}
        assert set(refs.values()) == {1}
        assert_held_issues_are_stored(app)
        # Sent again once the fault is mended: processed, as nothing of it was stored.
        monkeypatch.setattr(IntakePlan, "take", take)
        again = app.receive([signals[n] for n in sorted(faulty_at)], at("Intake", 61))
        assert set(kinds(again)) <= {"opened", "attached"}

    def test_a_failed_save_of_signals_attaching_to_held_issues_leaves_them_as_stored(
        self, app: Coordination
    ) -> None:
        # One chunk, no pipeline: the held issues were changed in place, then the save failed.
        app.receive(batch(PLACES, prefix="earlier"))
        original = app._record

        def failing_record(*args: object, **kwargs: object) -> object:
            raise OperationalError("the event store is away")

        app._record = failing_record  # type: ignore[assignment,method-assign]
        with pytest.raises(OperationalError):
            app.receive(batch(10, prefix="lost"))
        app._record = original  # type: ignore[method-assign]
        app.receive(batch(10, prefix="again"))
        assert_held_issues_are_stored(app)
        for issue in app.open_issues:
            assert app.get_issue(issue.id).signal_count in (1, 2)


class TestPipelineOnPopo(PipelineStories):
    @pytest.fixture
    def env(self) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def test_a_raising_plan_leaves_nothing_half_done() -> None:
    app = coordination({"PERSISTENCE_MODULE": "eventsourcing.popo"}, Clock())
    try:
        app.receive(batch(PLACES, prefix="earlier"))
        calls = 0
        real = app.now

        def breaking_clock() -> object:
            nonlocal calls
            calls += 1
            if calls == 2:  # planning chunk 2, while chunk 1 is being saved
                raise RuntimeError("a bug")
            return real()

        app.now = breaking_clock  # type: ignore[assignment]
        with pytest.raises(RuntimeError):
            app.receive(batch(many()), at("Intake", 5))
        app.now = real
        assert_held_issues_are_stored(app)
        outcomes = app.receive(batch(many()), at("Intake", 5))
        assert kinds(outcomes)[:MAX_SIGNALS_PER_SAVE] == ["duplicate"] * MAX_SIGNALS_PER_SAVE
        refs = stored_signal_refs(app)
        assert set(refs.values()) == {1} and len(refs) == PLACES + many()
    finally:
        app.close()


def test_an_integrity_error_in_flight_is_not_mistaken_for_success() -> None:
    app = coordination({"PERSISTENCE_MODULE": "eventsourcing.popo"}, Clock())
    try:
        failures = 0

        def clash_once(n: int) -> None:
            nonlocal failures
            if n == 1 and failures == 0:
                failures += 1
                raise IntegrityError("someone else wrote first")

        Saves(app, clash_once)
        outcomes = app.receive(batch(many()), at("Intake", 7))
        assert kinds(outcomes) == ["opened"] * PLACES + ["attached"] * (many() - PLACES)
        refs = stored_signal_refs(app)
        assert set(refs.values()) == {1} and len(refs) == many()
        assert app.recorder.max_tracking_id("Intake") == 7
        assert_held_issues_are_stored(app)
    finally:
        app.close()


def test_a_receipt_made_without_its_aggregate_is_the_one_record_makes() -> None:
    at = Clock()()
    recorded = Receipt.record("woonzorg", "wz-1", "BU0363FF03.issue.x", at)
    [created] = recorded.collect_events()
    received = Receipt.received("woonzorg", "wz-1", "BU0363FF03.issue.x", at)
    assert type(received) is type(created)
    assert vars(received) == vars(created)
    mapper = issue_mapper()
    assert mapper.to_stored_event(received) == mapper.to_stored_event(created)
    again = mapper.to_domain_event(mapper.to_stored_event(received)).mutate(None)
    assert isinstance(again, Receipt) and again.issue_id == "BU0363FF03.issue.x"
