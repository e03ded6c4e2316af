"""The JetStream store against the library's in-memory store, on random operations.

A Hypothesis state machine applies the same inserts, reads and subscriptions to
a `JetStreamProcessRecorder` (a fresh stream on a real nats-server for every
example) and to a `POPOProcessRecorder`, and asserts that they agree.

Notification ids differ by design (stream sequences, with gaps where tracking
records sit, against POPO's 1..n), so the model remembers each stored event's id
in both stores and every id-valued argument is chosen as "the id of the k-th
event" (or one beside it) in each store's own id space.

Our store refuses any version at or below an aggregate's last one, where POPO
only refuses versions it holds: that documented difference has a rule of its own.

Two JetStream recorders share the stream, each with its own cache of subject
heads and events, so stale expectations, server-side conflict checks and the
incremental reads of the event cache all get exercised.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import pytest
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
)
from eventsourcing.popo import POPOProcessRecorder
from eventsourcing.utils import Environment
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from events.jetstream import JetStreamFactory
from services.embedded_nats import EmbeddedNats
from tests.integration.jetstream_support import fresh_store_env

OriginatorId = UUID | str

TOPICS = (
    "buurtbeeld.tests:IssueOpened",
    "buurtbeeld.tests:OwnershipClaimed",
    "buurtbeeld.tests:IssueClosed",
)
APPLICATIONS = ("upstream", "intake-2")
# How long a subscription may take to deliver what is already stored.
SUBSCRIPTION_TIMEOUT = 10.0

# Every printable ASCII character a subject token may hold (no space, '.', '*', '>').
TOKEN_CHARACTERS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ".*>")
tokens = st.one_of(
    # A few short, shared tokens, so that ids like "a" and "a.b" meet.
    st.sampled_from(["a", "b", "issue", "BU0363FF03"]),
    st.text(alphabet=TOKEN_CHARACTERS, min_size=1, max_size=8),
)
dotted_ids = st.one_of(
    st.builds(lambda hex_id: f"BU0363FF03.issue.{hex_id:x}", st.integers(0, 2**64)),
    st.lists(tokens, min_size=1, max_size=4).map(".".join),
)
originator_ids: st.SearchStrategy[OriginatorId] = st.one_of(st.uuids(), dotted_ids)
states = st.binary(max_size=24)
# Mostly the next version; sometimes one that leaves a gap.
version_steps = st.sampled_from([1, 1, 1, 1, 2, 3])


@dataclass(frozen=True)
class Recorded:
    """One stored event and its notification id in each store."""

    originator_id: OriginatorId
    version: int
    topic: str
    state: bytes
    popo_id: int
    jetstream_id: int


def described(notifications: Sequence[Notification]) -> list[tuple[object, ...]]:
    """What must agree between the stores: everything but the id."""
    return [(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]


def take(subscription: Subscription[ApplicationRecorder], count: int) -> list[Notification]:
    """The next `count` notifications, or fewer if they do not come in time."""
    timer = threading.Timer(SUBSCRIPTION_TIMEOUT, subscription.stop)
    timer.start()
    try:
        return list(itertools.islice(subscription, count))
    finally:
        timer.cancel()


class JetStreamAgreesWithPOPO(RuleBasedStateMachine):
    """Same operations on both stores; every answer must agree.

    Subclassed with the `nats_url` of the server to run on.
    """

    nats_url: str

    def __init__(self) -> None:
        super().__init__()
        self.factory = JetStreamFactory(Environment(env=fresh_store_env(self.nats_url)))
        self.jetstream = [self.factory.process_recorder(), self.factory.process_recorder()]
        self.popo = POPOProcessRecorder()
        self.originators: list[OriginatorId] = []
        self.versions: dict[str, list[int]] = {}
        self.events: list[Recorded] = []
        self.tracking: dict[str, int] = {}

    def teardown(self) -> None:
        self.factory.close()

    # -- the model ------------------------------------------------------------

    def head(self, originator_id: OriginatorId) -> int:
        return max(self.versions[str(originator_id)], default=0)

    def gaps(self) -> list[tuple[OriginatorId, int]]:
        """Versions never used but below their aggregate's head."""
        return [
            (o, v)
            for o in self.originators
            for v in range(1, self.head(o))
            if v not in self.versions[str(o)]
        ]

    def id_pair(
        self, data: st.DataObject, *, for_stop: bool
    ) -> tuple[int | None, int | None, bool]:
        """An id for POPO, the id meaning the same place in JetStream's id space,
        and whether that is an event's own id (or no id at all) rather than one beside it.
        """
        kinds = ["none", "not positive", "beyond"]
        if self.events:
            kinds += ["at", "at", "before" if for_stop else "after"]
        kind = data.draw(st.sampled_from(kinds), label="stop" if for_stop else "start")
        if kind == "none":
            return None, None, True
        if kind == "not positive":
            same = data.draw(st.integers(-2, 0))
            return same, same, True
        if kind == "beyond":
            last = self.events[-1] if self.events else None
            return (last.popo_id + 1, last.jetstream_id + 1, True) if last else (1, 1, True)
        event = data.draw(st.sampled_from(self.events))
        # One past an event's id is the next event's id in POPO, and in JetStream
        # a sequence at or before the next event's: the same events from there.
        shift = {"at": 0, "after": 1, "before": -1}[kind]
        return event.popo_id + shift, event.jetstream_id + shift, kind == "at"

    def pick_recorder(self, data: st.DataObject) -> ProcessRecorder:
        index = data.draw(st.integers(0, len(self.jetstream) - 1), label="jetstream recorder")
        return self.jetstream[index]

    def draw_tracking(self, data: st.DataObject, *, stale: bool) -> Tracking:
        # A stale id needs an application that has tracked something already.
        applications = sorted(self.tracking) if stale else APPLICATIONS
        application = data.draw(st.sampled_from(applications), label="application")
        current = self.tracking.get(application)
        if stale:
            assert current is not None
            notification_id = data.draw(st.integers(1, current))
        else:
            notification_id = (current or 0) + data.draw(st.integers(1, 3))
        return Tracking(application_name=application, notification_id=notification_id)

    # -- operations ------------------------------------------------------------

    @initialize(originators=st.lists(originator_ids, min_size=2, max_size=4, unique_by=str))
    def start(self, originators: list[OriginatorId]) -> None:
        self.originators = originators
        self.versions = {str(o): [] for o in originators}

    @rule(data=st.data())
    def insert_events(self, data: st.DataObject) -> None:
        # Draw the events: an interleaving of originators, versions growing per originator.
        order = data.draw(st.lists(st.sampled_from(self.originators), max_size=5), label="order")
        next_version = {str(o): self.head(o) for o in order}
        events = []
        for originator_id in order:
            next_version[str(originator_id)] += data.draw(version_steps)
            events.append(
                StoredEvent(
                    originator_id=originator_id,
                    originator_version=next_version[str(originator_id)],
                    topic=data.draw(st.sampled_from(TOPICS)),
                    state=data.draw(states),
                )
            )
        # Sometimes slip in a version that is already stored: the whole insert must fail.
        stored = [(o, v) for o in self.originators for v in self.versions[str(o)]]
        clash = bool(stored) and data.draw(st.sampled_from([False, False, True]), label="clash")
        if clash:
            originator_id, version = data.draw(st.sampled_from(stored), label="clashing event")
            position = data.draw(st.integers(0, len(events)), label="clash position")
            events.insert(position, StoredEvent(originator_id, version, TOPICS[0], b"clash"))
        # Maybe a tracking record: the next id, or a stale one that must fail.
        tracking_kinds = ["none", "none", "next"] + (["stale"] if self.tracking else [])
        tracking_kind = data.draw(st.sampled_from(tracking_kinds), label="tracking")
        if not events and tracking_kind == "none":
            tracking_kind = "next"
        tracking = (
            None
            if tracking_kind == "none"
            else self.draw_tracking(data, stale=tracking_kind == "stale")
        )
        recorder = self.pick_recorder(data)
        note(f"insert {events} with {tracking}")

        if clash or tracking_kind == "stale":
            # Both refuse, and neither stores anything (the reads below check it).
            with pytest.raises(IntegrityError):
                self.popo.insert_events(events, tracking=tracking)
            with pytest.raises(IntegrityError):
                recorder.insert_events(events, tracking=tracking)
            return

        # Both store everything; ids are returned in the order of the events.
        popo_ids = self.popo.insert_events(events, tracking=tracking)
        jetstream_ids = recorder.insert_events(events, tracking=tracking)
        assert popo_ids is not None
        assert jetstream_ids is not None
        assert len(popo_ids) == len(jetstream_ids) == len(events)
        previous = self.events[-1].jetstream_id if self.events else 0
        assert list(jetstream_ids) == sorted(set(jetstream_ids))
        assert not jetstream_ids or jetstream_ids[0] > previous
        for event, popo_id, jetstream_id in zip(events, popo_ids, jetstream_ids, strict=True):
            self.events.append(
                Recorded(
                    event.originator_id,
                    event.originator_version,
                    event.topic,
                    event.state,
                    popo_id,
                    jetstream_id,
                )
            )
            self.versions[str(event.originator_id)].append(event.originator_version)
        if tracking is not None:
            self.tracking[tracking.application_name] = tracking.notification_id

    @precondition(lambda self: bool(self.gaps()))
    @rule(data=st.data())
    def insert_below_head(self, data: st.DataObject) -> None:
        # A never-used version below the head: POPO would take it, we refuse by design.
        originator_id, version = data.draw(st.sampled_from(self.gaps()), label="gap")
        event = StoredEvent(originator_id, version, TOPICS[0], b"below head")
        with pytest.raises(IntegrityError):
            self.pick_recorder(data).insert_events([event])

    @rule(data=st.data())
    def insert_tracking(self, data: st.DataObject) -> None:
        # The next tracking id is taken by both; a stale one refused by both.
        stale = bool(self.tracking) and data.draw(st.booleans(), label="stale")
        tracking = self.draw_tracking(data, stale=stale)
        recorder = self.pick_recorder(data)
        if stale:
            with pytest.raises(IntegrityError):
                self.popo.insert_tracking(tracking)
            with pytest.raises(IntegrityError):
                recorder.insert_tracking(tracking)
            return
        self.popo.insert_tracking(tracking)
        recorder.insert_tracking(tracking)
        self.tracking[tracking.application_name] = tracking.notification_id

    @rule(data=st.data())
    def select_events(self, data: st.DataObject) -> None:
        # Any originator, any bounds: exactly the same events in the same order.
        originator_id = data.draw(st.sampled_from(self.originators))
        bound = st.none() | st.integers(0, self.head(originator_id) + 2)
        gt, lte = data.draw(bound, label="gt"), data.draw(bound, label="lte")
        desc = data.draw(st.booleans(), label="desc")
        limit = data.draw(st.none() | st.integers(1, 4), label="limit")
        expected = self.popo.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        found = self.pick_recorder(data).select_events(
            originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        assert list(found) == list(expected)

    @rule(data=st.data())
    def select_notifications(self, data: st.DataObject) -> None:
        # Start and stop name the same place in both stores' id spaces.
        popo_start, jetstream_start, exact = self.id_pair(data, for_stop=False)
        # Exclusive of a start beside an event would differ: POPO's ids have no gaps.
        inclusive = not exact or data.draw(st.booleans(), label="inclusive_of_start")
        popo_stop, jetstream_stop, _ = self.id_pair(data, for_stop=True)
        limit = data.draw(st.integers(1, len(self.events) + 2), label="limit")
        topics = data.draw(st.lists(st.sampled_from(TOPICS), max_size=2, unique=True))
        expected = self.popo.select_notifications(
            popo_start, limit, popo_stop, topics, inclusive_of_start=inclusive
        )
        found = self.pick_recorder(data).select_notifications(
            jetstream_start, limit, jetstream_stop, topics, inclusive_of_start=inclusive
        )
        assert described(found) == described(expected)
        # Each notification carries the id its insert returned, in each store.
        recorded = {(str(e.originator_id), e.version): e for e in self.events}
        for popo_n, jetstream_n in zip(expected, found, strict=True):
            event = recorded[(str(popo_n.originator_id), popo_n.originator_version)]
            assert (popo_n.id, jetstream_n.id) == (event.popo_id, event.jetstream_id)

    @rule(data=st.data())
    def max_tracking_id(self, data: st.DataObject) -> None:
        # Per application, including one that never tracked anything.
        application = data.draw(st.sampled_from([*APPLICATIONS, "never-tracked"]))
        expected = self.popo.max_tracking_id(application)
        assert self.pick_recorder(data).max_tracking_id(application) == expected

    @rule(data=st.data())
    def max_notification_id(self, data: st.DataObject) -> None:
        # The id of the last event in each store (tracking records do not count).
        found = self.pick_recorder(data).max_notification_id()
        assert self.popo.max_notification_id() == (self.events[-1].popo_id if self.events else None)
        assert found == (self.events[-1].jetstream_id if self.events else None)

    @rule(data=st.data())
    def subscribe(self, data: st.DataObject) -> None:
        # Subscribe after the k-th event (or from the start) and read what follows.
        k = data.draw(st.integers(0, len(self.events)), label="after how many events")
        after = self.events[k - 1] if k else None
        topics = data.draw(st.lists(st.sampled_from(TOPICS), max_size=2, unique=True))
        following = [e for e in self.events[k:] if not topics or e.topic in topics]
        with self.popo.subscribe(gt=after.popo_id if after else None, topics=topics) as popo:
            expected = take(popo, len(following))
        recorder = self.pick_recorder(data)
        with recorder.subscribe(gt=after.jetstream_id if after else None, topics=topics) as js:
            found = take(js, len(following))
        # The same notifications, with the ids their inserts returned.
        assert [n.id for n in expected] == [e.popo_id for e in following]
        assert described(found) == described(expected)
        assert [n.id for n in found] == [e.jetstream_id for e in following]


@pytest.mark.slow
def test_jetstream_store_agrees_with_the_in_memory_store(shared_nats: EmbeddedNats) -> None:
    class OnTheSharedServer(JetStreamAgreesWithPOPO):
        nats_url = shared_nats.url

    run_state_machine_as_test(
        OnTheSharedServer,
        settings=settings(
            max_examples=200,
            stateful_step_count=50,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
