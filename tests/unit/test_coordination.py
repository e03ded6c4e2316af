"""The coordination application as stories: signals in, commands on issues, escalation.

`CoordinationStories` runs on whatever store its `env` fixture names: the
library's in-memory one here (`TestOnPopo`, no I/O), and JetStream in
tests/integration/test_coordination_jetstream.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.persistence import Tracking

from events.contract import (
    AcceptHandover,
    Claim,
    DeclineHandover,
    Handover,
    Location,
    Merge,
    Release,
    Reopen,
    Resolve,
    Signal,
)
from events.personal_data import PersonalDataVault
from services.coordination.application import MAX_SIGNALS_PER_SAVE, SYSTEM, Coordination
from services.coordination.commands import MAX_ATTEMPTS
from services.coordination.issue import Status
from services.coordination.outcomes import Outcome, OutcomeKind
from services.coordination.refusals import Refusal
from services.registries import (
    DEFAULT_CATEGORIES,
    Buurt,
    Buurten,
    Organisation,
    OrganisationKind,
    Organisations,
    token_sha256,
)

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
BUURT = "BU0363FF03"
OTHER_BUURT = "BU0363FG01"


def organisation(org_id: str, kind: OrganisationKind, *buurten: str) -> Organisation:
    return Organisation(
        id=org_id,
        kind=kind,
        name=org_id.title(),
        token_sha256=token_sha256(org_id),
        buurten=frozenset(buurten) if buurten else None,
    )


ORGANISATIONS = Organisations(
    [
        organisation("woonzorg", OrganisationKind.WONINGCORPORATIE),
        organisation("stadgenoot", OrganisationKind.WONINGCORPORATIE),
        organisation("wijkteam-nieuw-west", OrganisationKind.WIJKTEAM),
        organisation("bewonersportaal", OrganisationKind.BEWONERS),
        organisation("ouder-kindteam-osdorp", OrganisationKind.WIJKTEAM, OTHER_BUURT),
    ]
)
BUURTEN = Buurten(
    [
        Buurt(code=BUURT, name="Bedrijvenpark Lutkemeer"),
        Buurt(code=OTHER_BUURT, name="Osdorp-Midden Noord"),
    ]
)


class Clock:
    """The time every event is stamped with, moved on by the story."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **duration: float) -> None:
        self.at += timedelta(**duration)


def signal(
    ref: str,
    key: str | None = "parkeerplaats",
    category: str = "grof-vuil",
    buurt: str = BUURT,
) -> Signal:
    return Signal(
        signal_ref=ref,
        buurt=buurt,
        category=category,
        summary="Grof vuil naast de containers",
        observed_at=T0,
        location=Location(key=key, address="Louweshoek 1") if key else None,
    )


def kinds(outcomes: list[Outcome]) -> list[str]:
    return [outcome.kind.value for outcome in outcomes]


class CoordinationStories:
    """Every story, on the store `env` names."""

    @pytest.fixture
    def env(self) -> dict[str, str]:
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def app(self, env: dict[str, str], clock: Clock) -> Iterator[Coordination]:
        with coordination(env, clock) as app:
            yield app

    # -- intake ---------------------------------------------------------------

    def test_a_signal_opens_an_issue_and_one_about_the_same_place_attaches(
        self, app: Coordination, clock: Clock
    ) -> None:
        # The caretaker reports grof vuil at the parking place: a new, unowned issue.
        [opened] = app.receive([("woonzorg", signal("wz-1"))])
        assert opened.kind is OutcomeKind.OPENED and opened.issue_id is not None
        assert opened.issue_id.startswith(f"{BUURT}.issue.")
        issue = app.get_issue(opened.issue_id)
        assert (issue.status, issue.sensitivity, issue.signal_count) == (Status.UNOWNED, "open", 1)

        # A resident reports the same place a day later: it attaches, no new issue.
        clock.advance(days=1)
        [attached] = app.receive([("bewonersportaal", signal("bp-1"))])
        assert (attached.kind, attached.issue_id) == (OutcomeKind.ATTACHED, opened.issue_id)
        issue = app.get_issue(opened.issue_id)
        assert issue.signal_count == 2
        assert issue.reporters == {"woonzorg", "bewonersportaal"}

        # Another place, another category, or no place at all: each opens its own issue.
        others = app.receive(
            [
                ("woonzorg", signal("wz-2", key="speeltuin")),
                ("woonzorg", signal("wz-3", category="overlast")),
                ("woonzorg", signal("wz-4", key=None)),
                ("woonzorg", signal("wz-5", key=None)),
            ]
        )
        assert kinds(others) == ["opened"] * 4
        assert len({o.issue_id for o in others} | {opened.issue_id}) == 5

        # A vertrouwelijk category opens a vertrouwelijk issue.
        [social] = app.receive([("wijkteam-nieuw-west", signal("wt-1", category="schulden"))])
        assert social.issue_id is not None
        assert app.get_issue(social.issue_id).sensitivity == "vertrouwelijk"

    def test_a_signal_after_the_window_opens_a_new_issue_at_the_same_place(
        self, app: Coordination, clock: Clock
    ) -> None:
        [first] = app.receive([("woonzorg", signal("wz-1"))])

        # Eight days on, nothing happened to it: past the seven-day window.
        clock.advance(days=8)
        [later] = app.receive([("woonzorg", signal("wz-2"))])
        assert later.kind is OutcomeKind.OPENED and later.issue_id != first.issue_id

        # The next signal there attaches to the recent one.
        [again] = app.receive([("bewonersportaal", signal("bp-1"))])
        assert (again.kind, again.issue_id) == (OutcomeKind.ATTACHED, later.issue_id)

    def test_two_signals_about_one_place_in_one_call_share_an_issue(
        self, app: Coordination
    ) -> None:
        outcomes = app.receive([("woonzorg", signal("wz-1")), ("bewonersportaal", signal("bp-1"))])
        assert kinds(outcomes) == ["opened", "attached"]
        assert outcomes[0].issue_id == outcomes[1].issue_id

    def test_the_same_signal_again_is_a_duplicate_and_changes_nothing(
        self, app: Coordination, clock: Clock
    ) -> None:
        # Sent twice in one batch: processed once.
        outcomes = app.receive([("woonzorg", signal("wz-1")), ("woonzorg", signal("wz-1"))])
        assert kinds(outcomes) == ["opened", "duplicate"]
        issue_id = outcomes[0].issue_id
        stored = app.recorder.max_notification_id()

        # Sent again a month later, with a new one from the same partner: still once.
        clock.advance(days=30)
        outcomes = app.receive([("woonzorg", signal("wz-1")), ("woonzorg", signal("wz-2"))])
        assert kinds(outcomes) == ["duplicate", "opened"]
        assert outcomes[0].issue_id == issue_id
        assert issue_id is not None and app.get_issue(issue_id).signal_count == 1

        # Alone, it stores nothing at all.
        stored = app.recorder.max_notification_id()
        assert kinds(app.receive([("woonzorg", signal("wz-1"))])) == ["duplicate"]
        assert app.recorder.max_notification_id() == stored

        # The same reference from another organisation is another signal.
        [other] = app.receive([("bewonersportaal", signal("wz-1", key="speeltuin"))])
        assert other.kind is OutcomeKind.OPENED

    def test_signals_the_registries_do_not_allow_are_refused_with_reasons(
        self, app: Coordination
    ) -> None:
        outcomes = app.receive(
            [
                ("onbekend", signal("x-1")),
                ("woonzorg", signal("wz-1", category="graffiti")),
                ("woonzorg", signal("wz-2", buurt="BU0363ZZ99")),
                ("ouder-kindteam-osdorp", signal("ok-1")),
                ("onbekend", signal("x-2", category="graffiti", buurt="BU0363ZZ99")),
            ]
        )
        assert kinds(outcomes) == ["refused"] * 5
        assert [o.reasons for o in outcomes[:4]] == [
            ("organisation 'onbekend' is not in the organisations file",),
            ("category 'graffiti' is not a known category",),
            ("buurt BU0363ZZ99 is not one of the buurten this deployment knows",),
            (f"organisation ouder-kindteam-osdorp is not active in buurt {BUURT}",),
        ]
        # Every reason at once; and nothing was stored.
        assert len(outcomes[4].reasons) == 3
        assert all(o.issue_id is None and not o.accepted for o in outcomes)
        assert app.recorder.max_notification_id() is None

        # In its own buurt, the same team's signal is accepted.
        [accepted] = app.receive([("ouder-kindteam-osdorp", signal("ok-1", buurt=OTHER_BUURT))])
        assert accepted.kind is OutcomeKind.OPENED

    def test_the_intake_position_is_saved_with_what_it_caused(self, app: Coordination) -> None:
        # Intake hands over signals with the position of the last one in its stream.
        app.receive([("woonzorg", signal("wz-1")), ("woonzorg", signal("wz-2"))], at("Intake", 2))
        assert app.recorder.max_tracking_id("Intake") == 2

        # The same messages again after a crash, same position: nothing changes.
        stored = app.recorder.max_notification_id()
        outcomes = app.receive(
            [("woonzorg", signal("wz-1")), ("woonzorg", signal("wz-2"))], at("Intake", 2)
        )
        assert kinds(outcomes) == ["duplicate", "duplicate"]
        assert app.recorder.max_notification_id() == stored

        # A redelivery that overlaps new messages: the old ones are duplicates, the new
        # one is processed, and the position moves on.
        outcomes = app.receive(
            [("woonzorg", signal("wz-2")), ("woonzorg", signal("wz-3"))], at("Intake", 3)
        )
        assert kinds(outcomes) == ["duplicate", "attached"]
        assert app.recorder.max_tracking_id("Intake") == 3

        # Only refusals: no events, but the position still moves on.
        assert kinds(app.receive([("onbekend", signal("x"))], at("Intake", 4))) == ["refused"]
        assert app.recorder.max_tracking_id("Intake") == 4

    def test_more_signals_than_one_save_holds_are_saved_in_several(self, app: Coordination) -> None:
        many = MAX_SIGNALS_PER_SAVE * 2 + 50
        signals = [("woonzorg", signal(f"wz-{n}", key=f"plek-{n % 400}")) for n in range(many)]
        outcomes = app.receive(signals, at("Intake", many))
        assert kinds(outcomes) == ["opened"] * 400 + ["attached"] * (many - 400)
        assert app.recorder.max_tracking_id("Intake") == many
        # Issue events and receipts: two per signal.
        assert app.recorder.max_notification_id() == 2 * many

    # -- commands --------------------------------------------------------------

    def test_claim_hand_over_resolve_and_reopen(self, app: Coordination, clock: Clock) -> None:
        issue_id = opened(app)

        # The corporation takes regie.
        clock.advance(hours=1)
        accepted = app.handle("woonzorg", "claim", Claim(issue_id=issue_id, actor="J. de Vries"))
        assert (accepted.issue_id, accepted.version) == (issue_id, 2)
        issue = app.get_issue(issue_id)
        assert (issue.owner, issue.owned_since) == ("woonzorg", clock.at)

        # It hands over to the wijkteam, which declines; then to another corporation, which accepts.
        app.handle("woonzorg", "handover", Handover(issue_id=issue_id, to="wijkteam-nieuw-west"))
        assert app.get_issue(issue_id).status is Status.HANDOVER_PENDING
        app.handle("wijkteam-nieuw-west", "decline-handover", DeclineHandover(issue_id=issue_id))
        app.handle("woonzorg", "handover", Handover(issue_id=issue_id, to="stadgenoot"))
        app.handle("stadgenoot", "accept-handover", AcceptHandover(issue_id=issue_id))
        assert app.get_issue(issue_id).owner == "stadgenoot"

        # The owner resolves it; a resident reopens it; it is unowned again.
        app.handle("stadgenoot", "resolve", Resolve(issue_id=issue_id, resolution="opgeruimd"))
        assert app.get_issue(issue_id).status is Status.RESOLVED
        reopened = app.handle("bewonersportaal", "reopen", Reopen(issue_id=issue_id, reason="weer"))
        assert reopened.version == 8
        assert app.get_issue(issue_id).status is Status.UNOWNED

        # Released after a new claim: unowned again.
        app.handle("wijkteam-nieuw-west", "claim", Claim(issue_id=issue_id))
        app.handle("wijkteam-nieuw-west", "release", Release(issue_id=issue_id))
        assert app.get_issue(issue_id).owner is None

        # Every event says who and when.
        events = list(app.events.get(issue_id))
        assert [type(e).__name__ for e in events][1:3] == ["OwnershipClaimed", "HandoverOffered"]
        assert (events[1].organisation, events[1].actor, events[1].at) == (  # type: ignore[attr-defined]
            "woonzorg",
            "J. de Vries",
            T0 + timedelta(hours=1),
        )

    def test_intake_sees_what_commands_did(self, app: Coordination) -> None:
        issue_id = opened(app)
        app.handle("woonzorg", "claim", Claim(issue_id=issue_id))
        app.handle("woonzorg", "resolve", Resolve(issue_id=issue_id, resolution="opgeruimd"))

        # A resolved issue takes no more signals: the next one opens a new issue.
        [after] = app.receive([("bewonersportaal", signal("bp-1"))])
        assert after.kind is OutcomeKind.OPENED and after.issue_id != issue_id

        # Merged into the first, once reopened, it counts there; the next signal attaches there.
        assert after.issue_id is not None
        app.handle("bewonersportaal", "reopen", Reopen(issue_id=issue_id, reason="weer"))
        app.handle("bewonersportaal", "merge", Merge(issue_id=after.issue_id, into=issue_id))
        [third] = app.receive([("stadgenoot", signal("sg-1"))])
        assert (third.kind, third.issue_id) == (OutcomeKind.ATTACHED, issue_id)
        assert app.get_issue(issue_id).signal_count == 3

    def test_merging_closes_one_issue_into_another(self, app: Coordination) -> None:
        first = opened(app, "wz-1", key="parkeerplaats")
        second = opened(app, "bp-1", key="parkeerplaats-oost", organisation="bewonersportaal")

        accepted = app.handle("woonzorg", "merge", Merge(issue_id=second, into=first))
        assert (accepted.issue_id, accepted.version) == (second, 2)
        assert app.get_issue(second).status is Status.MERGED
        target = app.get_issue(first)
        assert target.signal_count == 2
        assert target.reporters == {"woonzorg", "bewonersportaal"}

        # Across buurten, or into a closed issue, is refused.
        elsewhere = opened(app, "wz-9", buurt=OTHER_BUURT)
        with pytest.raises(Refusal, match="different buurten") as refused:
            app.handle("woonzorg", "merge", Merge(issue_id=elsewhere, into=first))
        assert refused.value.code == "invalid"
        with pytest.raises(Refusal, match="merged") as refused:
            app.handle("woonzorg", "merge", Merge(issue_id=first, into=second))
        assert refused.value.code == "invalid"

    @pytest.mark.parametrize(
        ("who", "verb", "command", "code"),
        [
            ("stadgenoot", "claim", lambda i: Claim(issue_id=i), "already-owned"),
            ("stadgenoot", "release", lambda i: Release(issue_id=i), "not-owner"),
            ("stadgenoot", "resolve", lambda i: Resolve(issue_id=i, resolution="x"), "not-owner"),
            ("stadgenoot", "handover", lambda i: Handover(issue_id=i, to="woonzorg"), "not-owner"),
            ("woonzorg", "claim", lambda i: Claim(issue_id=f"{BUURT}.issue.nope"), "not-found"),
            ("woonzorg", "claim", lambda i: Claim(issue_id="not an id"), "not-found"),
            (
                "woonzorg",
                "merge",
                lambda i: Merge(issue_id=i, into=f"{BUURT}.issue.x"),
                "not-found",
            ),
            ("onbekend", "claim", lambda i: Claim(issue_id=i), "forbidden"),
            ("ouder-kindteam-osdorp", "claim", lambda i: Claim(issue_id=i), "forbidden"),
            ("stadgenoot", "accept-handover", lambda i: AcceptHandover(issue_id=i), "forbidden"),
            ("woonzorg", "reopen", lambda i: Reopen(issue_id=i, reason="x"), "invalid"),
            ("woonzorg", "handover", lambda i: Handover(issue_id=i, to="woonzorg"), "invalid"),
            ("woonzorg", "delete", lambda i: Claim(issue_id=i), "invalid"),
            ("woonzorg", "claim", lambda i: Release(issue_id=i), "invalid"),
        ],
    )
    def test_every_refusal_has_its_code_and_changes_nothing(
        self, app: Coordination, who: str, verb: str, command: object, code: str
    ) -> None:
        issue_id = opened(app)
        app.handle("woonzorg", "claim", Claim(issue_id=issue_id))
        app.handle("woonzorg", "handover", Handover(issue_id=issue_id, to="wijkteam-nieuw-west"))
        stored = app.recorder.max_notification_id()

        with pytest.raises(Refusal) as refused:
            app.handle(who, verb, command(issue_id))  # type: ignore[operator]
        assert refused.value.code == code
        assert app.recorder.max_notification_id() == stored

    def test_a_receipt_is_no_issue(self, app: Coordination) -> None:
        opened(app)
        receipt_id = "receipts.woonzorg." + "0" * 40
        with pytest.raises(Refusal) as refused:
            app.handle("woonzorg", "claim", Claim(issue_id=receipt_id))
        assert refused.value.code == "not-found"

    def test_an_issue_that_keeps_changing_is_a_conflict(self, app: Coordination) -> None:
        issue_id = opened(app)
        # Every time we are about to act on it, another signal attaches first.
        app.now = busy = BusyNeighbour(app)

        with pytest.raises(Refusal) as refused:
            app.handle("woonzorg", "claim", Claim(issue_id=issue_id))
        assert refused.value.code == "conflict"
        issue = app.get_issue(issue_id)
        assert issue.owner is None
        assert issue.signal_count == 1 + busy.changes == 1 + MAX_ATTEMPTS

    # -- escalation ------------------------------------------------------------

    def test_an_unowned_issue_past_its_target_time_is_escalated_once(
        self, app: Coordination, clock: Clock
    ) -> None:
        # Grof vuil should have an owner within 48 hours; veiligheid within 24.
        vuil = opened(app, "wz-1")
        veilig = opened(app, "wz-2", category="veiligheid")
        owned = opened(app, "wz-3", key="speeltuin")
        app.handle("woonzorg", "claim", Claim(issue_id=owned))

        assert app.escalate_overdue(T0 + timedelta(hours=23)) == []
        assert app.escalate_overdue(T0 + timedelta(hours=24)) == [veilig]
        assert app.escalate_overdue(T0 + timedelta(hours=48)) == [vuil]
        # Exactly once, however often the scheduler asks.
        assert app.escalate_overdue(T0 + timedelta(days=30)) == []
        escalated = list(app.events.get(vuil))[-1]
        assert type(escalated).__name__ == "IssueEscalated"
        assert escalated.organisation == SYSTEM  # type: ignore[attr-defined]
        assert escalated.due_at == T0 + timedelta(hours=48)  # type: ignore[attr-defined]
        assert app.get_issue(vuil).status is Status.ESCALATED

        # Claimed and released: the target time starts again from the release.
        clock.at = T0 + timedelta(days=3)
        app.handle("wijkteam-nieuw-west", "claim", Claim(issue_id=vuil))
        app.handle("wijkteam-nieuw-west", "release", Release(issue_id=vuil))
        assert app.escalate_overdue(clock.at + timedelta(hours=47)) == []
        assert app.escalate_overdue(clock.at + timedelta(hours=48)) == [vuil]

    def test_escalation_uses_the_clock_when_not_told_the_time(
        self, app: Coordination, clock: Clock
    ) -> None:
        issue_id = opened(app)
        clock.advance(hours=48)
        assert app.escalate_overdue() == [issue_id]


class TestOnPopo(CoordinationStories):
    @pytest.fixture
    def env(self) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}


# -- helpers -------------------------------------------------------------------


def coordination(
    env: dict[str, str], clock: Clock, personal_data: PersonalDataVault | None = None
) -> Coordination:
    return Coordination(
        env,
        organisations=ORGANISATIONS,
        categories=DEFAULT_CATEGORIES,
        buurten=BUURTEN,
        now=clock,
        personal_data=personal_data,
    )


def at(application_name: str, position: int) -> Tracking:
    return Tracking(application_name=application_name, notification_id=position)


def opened(
    app: Coordination, ref: str = "wz-1", organisation: str = "woonzorg", **where: str
) -> str:
    """A new issue, opened by one signal."""
    [outcome] = app.receive([(organisation, signal(ref, **where))])
    assert outcome.kind is OutcomeKind.OPENED and outcome.issue_id is not None
    return outcome.issue_id


class BusyNeighbour:
    """A clock that, each time it is read, first has a resident report the issue's place again."""

    def __init__(self, app: Coordination) -> None:
        self.app, self.clock = app, app.now
        self.changes = 0

    def __call__(self) -> datetime:
        self.app.now = self.clock  # the neighbour's own signal reads the real clock
        try:
            self.changes += 1
            self.app.receive([("bewonersportaal", signal(f"bp-{self.changes}"))])
        finally:
            self.app.now = self
        return self.clock()
