"""The picture folds the issue events to what the Issue aggregate itself says.

The coordination runs on the in-memory store (no I/O); whatever commands and
signals Hypothesis throws at it, folding its stored events with
`projections.picture.apply` gives each issue's status, owner, handover,
signal count, reporters and version exactly as the aggregate has them. Folding
twice, or a stream cut and resumed anywhere, gives the same rows.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from datetime import timedelta

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.contract import (
    AcceptHandover,
    Claim,
    Command,
    DeclineHandover,
    Handover,
    IssueOpened,
    Merge,
    Release,
    Reopen,
    Reporter,
    Resolve,
)
from projections.picture import (
    ESCALATED,
    OWNED,
    UNOWNED,
    IssueRow,
    Picture,
    PictureEvent,
    apply,
)
from projections.picture_events import SignalSummary
from projections.reading import issue_event, picture_event
from services.coordination.application import Coordination
from services.coordination.refusals import Refusal
from tests.unit.test_coordination import Clock, coordination, signal

ORGS = ["woonzorg", "stadgenoot", "wijkteam-nieuw-west"]
PLACES = ["parkeerplaats", "portiek-3", "speeltuin"]
POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}

KINDS = {
    "signal": 14,
    "claim": 14,
    "handover": 12,
    "accept": 10,
    "decline": 8,
    "release": 8,
    "resolve": 10,
    "reopen": 7,
    "merge": 5,
    "escalate": 6,
    "wait": 6,
}


def random_story(rnd: random.Random, length: int) -> list[tuple[object, ...]]:
    """`length` steps, weighted so that most commands are ones the rules allow."""
    story: list[tuple[object, ...]] = []
    for _ in range(length):
        [kind] = rnd.choices(list(KINDS), weights=list(KINDS.values()))
        org = rnd.choice(ORGS) if rnd.random() < 0.3 else "rightful"
        if kind == "signal":
            story.append((kind, rnd.choice(ORGS), rnd.choice(PLACES), rnd.randint(0, 1)))
        else:
            story.append((kind, org, rnd.randint(0, 3), rnd.choice(ORGS)))
    return story


def play(app: Coordination, clock: Clock, story: list[tuple[object, ...]]) -> list[str]:
    """Every step of `story` on `app`; the ids of the issues it opened."""
    issues: list[str] = []
    for step in story:
        act(app, clock, step, issues)
    return issues


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[object, ...]]:
    """A story of 20-80 steps."""
    rnd = draw(st.randoms(use_true_random=False))
    return random_story(rnd, rnd.randint(20, 80))


def stored_events(app: Coordination) -> list[tuple[int, str, int, bytes]]:
    return [
        (n.id, n.topic, n.originator_version, n.state)
        for n in app.recorder.select_notifications(1, 100_000)
    ]


def fold(
    events: list[tuple[int, str, int, bytes]],
    decode: Callable[[str, bytes], PictureEvent | None] = issue_event,
) -> Picture:
    picture = Picture()
    for _, topic, version, body in events:
        event = decode(topic, body)
        if event is not None:
            picture.apply(event, version)
    return picture


def act(app: Coordination, clock: Clock, step: tuple[object, ...], issues: list[str]) -> None:
    kind = step[0]
    if kind == "signal":
        _, org, place, n = step
        ref = f"{org}-{len(issues)}-{clock.at.timestamp()}-{n}"
        category = "grof-vuil" if n == 0 else "eenzaamheid"
        for outcome in app.receive([(str(org), signal(ref, str(place), category))]):
            if outcome.issue_id and outcome.issue_id not in issues:
                issues.append(outcome.issue_id)
    elif kind == "escalate":
        app.escalate_overdue(clock.at)
    elif kind == "wait":
        clock.advance(hours=80)
    elif issues:
        _, org, index, other = step
        issue_id = issues[-1 - int(str(index)) % len(issues)]
        if org == "rightful":  # whoever the rules would let act, so that stories go far
            issue = app.get_issue(issue_id)
            rightful = issue.handover_to if kind in ("accept", "decline") else issue.owner
            org = rightful or ORGS[int(str(index)) % len(ORGS)]
        into = issues[(int(str(index)) + 1) % len(issues)]
        command: Command = {
            "claim": Claim(issue_id=issue_id),
            "release": Release(issue_id=issue_id),
            "handover": Handover(issue_id=issue_id, to=str(other)),
            "accept": AcceptHandover(issue_id=issue_id),
            "decline": DeclineHandover(issue_id=issue_id),
            "resolve": Resolve(issue_id=issue_id, resolution="opgeruimd"),
            "reopen": Reopen(issue_id=issue_id, reason="weer terug"),
            "merge": Merge(issue_id=issue_id, into=into),
        }[str(kind)]
        verb = {"accept": "accept-handover", "decline": "decline-handover"}.get(
            str(kind), str(kind)
        )
        with contextlib.suppress(Refusal):
            app.handle(str(org), verb, command)
    clock.advance(minutes=7)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps())
def test_the_picture_says_what_the_aggregates_say(story: list[tuple[object, ...]]) -> None:
    clock = Clock()
    app = coordination(POPO, clock)
    issues: list[str] = []
    for step in story:
        act(app, clock, step, issues)
    events = stored_events(app)
    picture = fold(events)
    assert sorted(picture.rows) == sorted(issues)
    for issue_id in issues:
        issue = app.get_issue(issue_id)
        row = picture.rows[issue_id]
        assert row.status == issue.status.value
        assert row.owner == issue.owner
        assert row.handover_to == issue.handover_to
        assert row.signal_count == issue.signal_count
        assert sorted(row.reporters) == sorted(issue.reporters)
        assert row.version == issue.version
        assert row.opened_at == issue.opened_at
        assert row.owned_since == issue.owned_since
    # The lean events a replay decodes fold to the same rows.
    assert _rows(fold(events, picture_event)) == _rows(picture)
    # The same events again (a redelivery) change nothing; nor does a cut and resume.
    again = fold(events + events)
    assert _rows(again) == _rows(picture)
    if events:
        cut = len(events) // 2
        resumed = fold(events[:cut])
        for _, topic, version, body in events[cut - 1 :]:
            event = issue_event(topic, body)
            if event is not None:
                resumed.apply(event, version)
        assert _rows(resumed) == _rows(picture)


def _rows(picture: Picture) -> dict[str, bytes]:
    return {k: msgspec.json.encode(v) for k, v in picture.rows.items()}


def test_a_story_unowned_escalated_claimed_and_released() -> None:
    clock = Clock()
    app = coordination(POPO, clock)
    [first] = app.receive([("woonzorg", signal("wz-1"))])
    assert first.issue_id is not None
    issue_id = first.issue_id
    app.receive([("stadgenoot", signal("sg-1"))])

    row = fold(stored_events(app)).rows[issue_id]
    assert (row.status, row.owner, row.signal_count) == (UNOWNED, None, 2)
    assert row.reporters == ["woonzorg", "stadgenoot"]
    assert row.summary == "Grof vuil naast de containers"

    clock.advance(hours=49)  # grof vuil: 48 hours to find an owner
    app.escalate_overdue()
    row = fold(stored_events(app)).rows[issue_id]
    assert row.status == ESCALATED
    assert row.escalated_at == clock.at and row.due_at == row.opened_at + timedelta(hours=48)

    app.handle("woonzorg", "claim", Claim(issue_id=issue_id))
    row = fold(stored_events(app)).rows[issue_id]
    assert (row.status, row.owner, row.owned_since, row.escalated_at) == (
        OWNED,
        "woonzorg",
        clock.at,
        None,
    )

    app.handle("woonzorg", "release", Release(issue_id=issue_id))
    row = fold(stored_events(app)).rows[issue_id]
    assert (row.status, row.owner, row.owned_since) == (UNOWNED, None, None)


def test_personal_data_never_reaches_a_row() -> None:
    clock = Clock()
    app = coordination(POPO, clock)
    sig = msgspec.structs.replace(
        signal("wz-1"),
        reporter=Reporter(role="huismeester", name="J. de Vries", phone="0612345678"),
        subject_ref="hh-8f3a21",
    )
    app.receive([("woonzorg", sig)])
    [row] = fold(stored_events(app)).rows.values()
    stored = msgspec.json.encode(row)
    for personal_datum in (b"J. de Vries", b"0612345678", b"hh-8f3a21"):
        assert personal_datum not in stored
    # ...nor the event log in the clear: sealed, for those who may see them.
    assert not any(b"J. de Vries" in body for *_, body in stored_events(app))
    [opened_event] = [issue_event(t, b) for _, t, _, b in stored_events(app) if t == "IssueOpened"]
    assert isinstance(opened_event, IssueOpened) and opened_event.signal.personal is not None
    unsealed = [app.personal_data.unseal(part) for part in opened_event.signal.personal]
    assert unsealed == [sig.reporter, "hh-8f3a21"]
    # A replay's lean events have no field for them at all.
    assert set(SignalSummary.__struct_fields__) == {
        "signal_ref",
        "organisation",
        "summary",
        "observed_at",
        "location",
    }
    [opened] = [picture_event(t, b) for _, t, _, b in stored_events(app) if t == "IssueOpened"]
    assert opened is not None and b"J. de Vries" not in msgspec.json.encode(opened)


def test_an_older_version_of_an_event_is_upcast_for_the_lean_fold_too() -> None:
    clock = Clock()
    app = coordination(POPO, clock)
    app.receive([("woonzorg", signal("wz-1")), ("stadgenoot", signal("wz-2"))])
    events = stored_events(app)
    # `Name@1`: what the log holds for version 1 once a version 2 exists (no upcaster
    # needed here: the same body, read through the upcasting path).
    older = [(p, f"{t}@1" if t != "SignalReceived" else t, v, b) for p, t, v, b in events]
    assert _rows(fold(older, picture_event)) == _rows(fold(events)) != {}
    assert picture_event("SignalReceived", b"{}") is None
    assert picture_event("Snapshot@2", b"{}") is None


def test_an_event_of_an_issue_never_seen_opened_is_skipped() -> None:
    from events.contract import OwnershipClaimed

    claimed = OwnershipClaimed(
        issue_id="BU0363FF03.issue.x",
        buurt="BU0363FF03",
        category="grof-vuil",
        at=Clock().at,
        organisation="woonzorg",
    )
    assert apply(None, claimed, 2) is None


def test_rows_round_trip_through_their_stored_json() -> None:
    clock = Clock()
    app = coordination(POPO, clock)
    app.receive([("woonzorg", signal("wz-1")), ("stadgenoot", signal("sg-1", "speeltuin"))])
    for row in fold(stored_events(app)).rows.values():
        assert msgspec.json.decode(msgspec.json.encode(row), type=IssueRow) == row
