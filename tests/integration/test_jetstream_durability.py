"""Durability: what the store acknowledged survives `kill -9` of the nats-server.

The embedded server runs JetStream with `sync_interval: always`, so every
acknowledged write is on disk. Writers keep inserting while the server is
killed and restarted on the same store and port: every acknowledged insert must
be there afterwards, exactly; inserts that raised may or may not be (an ack can
be lost on the way), but only whole; nothing appears that nobody wrote; and
while the server is down every call fails fast with `OperationalError`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.utils import Environment

from events.jetstream import JetStreamFactory
from services.embedded_nats import EmbeddedNats
from tests.integration.jetstream_support import fresh_store_env

WRITERS = 4
NATS_TIMEOUT = 1.0
# The client's bound on one call is NATS_TIMEOUT plus its own 1 s of grace;
# a loaded 2-core machine gets some more on top.
FAILS_WITHIN = 5.0
TOPIC = "buurtbeeld.tests:SignalAttached"
# Bounds on waiting for something to happen; never slept away in full.
PATIENCE = 30.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = PATIENCE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting until {what}")
        time.sleep(0.02)


@dataclass
class Attempt:
    """One `insert_events` call and how it ended."""

    events: list[StoredEvent]
    started: float
    ended: float = 0.0
    ids: list[int] | None = None
    error: Exception | None = None

    @property
    def acknowledged(self) -> bool:
        return self.ids is not None


@dataclass
class Writer:
    """Inserts one to three events at a time for its own two aggregates, until stopped.

    Versions only grow: after a failed insert it moves on to higher versions,
    which are valid whether or not the failed one was stored.
    """

    number: int
    recorder: ApplicationRecorder
    stopping: threading.Event
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.originators: list[UUID | str] = [
            f"BU000{self.number}FF01.issue.{uuid4().hex}",
            uuid4(),
        ]
        self.versions = dict.fromkeys(map(str, self.originators), 0)
        self.thread = threading.Thread(target=self.run, name=f"writer-{self.number}")

    def run(self) -> None:
        count = 0
        while not self.stopping.is_set():
            count += 1
            events = []
            for i in range(1 + count % 3):
                originator_id = self.originators[(count + i) % 2]
                self.versions[str(originator_id)] += 1
                events.append(
                    StoredEvent(
                        originator_id=originator_id,
                        originator_version=self.versions[str(originator_id)],
                        topic=TOPIC,
                        state=f"writer {self.number} insert {count} event {i}".encode(),
                    )
                )
            attempt = Attempt(events, started=time.monotonic())
            try:
                ids = self.recorder.insert_events(events)
            except Exception as e:
                attempt.error = e
            else:
                attempt.ids = list(ids or [])
            attempt.ended = time.monotonic()
            with self.lock:
                self.attempts.append(attempt)
            if attempt.error is not None:
                # A client backs off a little instead of spinning on a dead server.
                self.stopping.wait(0.05)

    def finished(self) -> list[Attempt]:
        with self.lock:
            return list(self.attempts)

    def acknowledged_after(self, moment: float) -> int:
        return sum(1 for a in self.finished() if a.acknowledged and a.started > moment)

    def failed_after(self, moment: float) -> int:
        return sum(1 for a in self.finished() if not a.acknowledged and a.started > moment)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server of this test's own, so it can be killed and restarted."""
    server = EmbeddedNats(data_dir=tmp_path / "nats").start()
    yield server
    server.stop()


def restart(server: EmbeddedNats) -> EmbeddedNats:
    """A new server process on the same store and the same port."""
    return EmbeddedNats(data_dir=server.data_dir, port=server.port).start()


def store_env(server: EmbeddedNats) -> dict[str, str]:
    return {**fresh_store_env(server.url), "NATS_TIMEOUT": str(NATS_TIMEOUT)}


def answers(recorder: ApplicationRecorder) -> bool:
    try:
        recorder.max_notification_id()
    except OperationalError:
        return False
    return True


def insert_once(recorder: ApplicationRecorder, event: StoredEvent) -> None:
    """Insert `event`, trying again while the call times out (a loaded machine
    can keep the first write after a restart waiting past NATS_TIMEOUT).

    A write that timed out may still have been stored, its ack lost: then the
    next try finds the event there and is refused with IntegrityError. Only
    after a time-out is that refusal accepted; the caller checks that the
    event is there exactly once.
    """
    timed_out = False
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            recorder.insert_events([event])
            return
        except IntegrityError:
            if not timed_out:
                raise
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            timed_out = True


def all_notifications(recorder: ApplicationRecorder) -> list[Notification]:
    return list(recorder.select_notifications(start=None, limit=1_000_000))


@pytest.mark.slow
def test_acknowledged_inserts_survive_kill_9(server: EmbeddedNats) -> None:
    env = store_env(server)
    factory = JetStreamFactory(Environment(env=env))
    stopping = threading.Event()
    writers: list[Writer] = []
    restarted: EmbeddedNats | None = None
    try:
        # The writers get going, two to a recorder; each has some inserts acknowledged.
        recorders = [factory.application_recorder(), factory.application_recorder()]
        writers += [Writer(n, recorders[n % 2], stopping) for n in range(WRITERS)]
        for writer in writers:
            writer.thread.start()
        wait_until(
            lambda: all(w.acknowledged_after(0) >= 20 for w in writers),
            "every writer has 20 acknowledged inserts",
        )

        # The server dies mid-write, without a chance to flush anything.
        server.kill()
        killed = time.monotonic()

        # The writers keep going; what they start now fails, and fails fast.
        wait_until(
            lambda: all(w.failed_after(killed) >= 3 for w in writers),
            "every writer has seen 3 inserts fail",
        )
        restarting = time.monotonic()
        while_down = [
            a for w in writers for a in w.finished() if killed < a.started and a.ended < restarting
        ]
        assert not [a for a in while_down if a.acknowledged], "acknowledged with no server"
        assert len(while_down) >= 3 * WRITERS
        for attempt in while_down:
            assert isinstance(attempt.error, OperationalError), repr(attempt.error)

        # The server comes back on the same store and port; the writers'
        # recorders reconnect by themselves and each writer is acknowledged again.
        restarted = restart(server)
        wait_until(
            lambda: all(w.acknowledged_after(restarting) >= 5 for w in writers),
            "every writer has 5 inserts acknowledged after the restart",
        )
        stop_writers(writers, stopping)

        # Every call that failed did so quickly; none refused a version (they only grow).
        attempts = [a for w in writers for a in w.finished()]
        failed = [a for a in attempts if not a.acknowledged]
        assert failed
        assert max(a.ended - a.started for a in failed) < FAILS_WITHIN
        assert all(isinstance(a.error, OperationalError) for a in failed), {
            repr(a.error) for a in failed
        }

        # A fresh factory on the restarted server finds every acknowledged insert.
        reader_factory = JetStreamFactory(Environment(env=env))
        try:
            reader = reader_factory.application_recorder()
            notifications = check_stream(reader, attempts, writers)
            stream = reader_factory.client.run(
                reader_factory.client.nc.jetstream().stream_info(env["NATS_STREAM"])
            )
        finally:
            reader_factory.close()

        # The stream's sequences are 1..n, all of them events: nothing deleted, no holes.
        assert stream.state.first_seq == 1
        assert stream.state.last_seq == stream.state.messages == len(notifications)

        # The writers' own recorders, connected throughout, read the same.
        for recorder in recorders:
            assert all_notifications(recorder) == notifications
            assert recorder.max_notification_id() == len(notifications)
    finally:
        stop_writers(writers, stopping)
        factory.close()
        if restarted is not None:
            restarted.stop()


def stop_writers(writers: list[Writer], stopping: threading.Event) -> None:
    stopping.set()
    for writer in writers:
        if writer.thread.is_alive():
            writer.thread.join(timeout=PATIENCE)
        assert not writer.thread.is_alive()


def check_stream(
    reader: ApplicationRecorder, attempts: list[Attempt], writers: list[Writer]
) -> list[Notification]:
    """Every acknowledged insert is stored exactly; nothing else but whole failed ones."""
    notifications = all_notifications(reader)
    stored = {(str(n.originator_id), n.originator_version): n for n in notifications}

    # Ids grow, and no (aggregate, version) is stored twice.
    assert [n.id for n in notifications] == sorted({n.id for n in notifications})
    assert len(stored) == len(notifications)

    # Each acknowledged insert is there, under the ids it was given.
    attempted: dict[tuple[str, int], StoredEvent] = {}
    lost = []
    for attempt in attempts:
        keys = [(str(e.originator_id), e.originator_version) for e in attempt.events]
        attempted.update(zip(keys, attempt.events, strict=True))
        present = [key in stored for key in keys]
        if attempt.acknowledged and not all(present):
            lost.append(attempt)
        elif attempt.acknowledged:
            assert [stored[key].id for key in keys] == attempt.ids
        # Stored or not, an insert is all or nothing (an atomic batch).
        assert all(present) or not any(present), (attempt, present)
    assert not lost, f"{len(lost)} acknowledged inserts lost, the first: {lost[0]}"

    # Everything stored was written by somebody, exactly as written.
    for key, notification in stored.items():
        event = attempted[key]
        assert (notification.originator_id, notification.topic, notification.state) == (
            event.originator_id,
            event.topic,
            event.state,
        )

    # Read per aggregate, the events are the same, in version order.
    for writer in writers:
        for originator_id in writer.originators:
            events = reader.select_events(originator_id)
            expected = [n for n in notifications if str(n.originator_id) == str(originator_id)]
            assert [(e.originator_version, e.state) for e in events] == [
                (n.originator_version, n.state) for n in expected
            ]
            versions = [e.originator_version for e in events]
            assert versions == sorted(set(versions))

    # Acknowledged inserts from before the kill are the bulk, not a token few.
    counts = Counter(a.acknowledged for a in attempts)
    assert counts[True] >= 25 * len(writers)
    return notifications


@pytest.mark.slow
def test_calls_fail_fast_while_the_server_is_down_and_work_after_restart(
    server: EmbeddedNats,
) -> None:
    env = store_env(server)
    factory = JetStreamFactory(Environment(env=env))
    restarted: EmbeddedNats | None = None
    try:
        # An event is stored while the server is up.
        recorder = factory.application_recorder()
        originator_id = f"BU0363FF03.issue.{uuid4().hex}"
        first = StoredEvent(originator_id, 1, TOPIC, b"before the crash")
        assert recorder.insert_events([first]) == [1]

        # The server dies.
        server.kill()

        # Every kind of call now fails with OperationalError, within the timeout.
        second = StoredEvent(originator_id, 2, TOPIC, b"after the restart")
        calls: list[tuple[str, Callable[[], object]]] = [
            ("insert_events", lambda: recorder.insert_events([second])),
            ("select_events", lambda: recorder.select_events(originator_id)),
            ("select_notifications", lambda: recorder.select_notifications(None, 10)),
            ("max_notification_id", recorder.max_notification_id),
            ("subscribe", lambda: recorder.subscribe(gt=None)),
        ]
        for name, call in calls:
            started = time.monotonic()
            with pytest.raises(OperationalError):
                call()
            took = time.monotonic() - started
            assert took < NATS_TIMEOUT + 1.0 + 1.5, f"{name} took {took:.1f}s to fail"

        # A store opened while the server is down fails just as fast.
        latecomer = JetStreamFactory(Environment(env=env))
        started = time.monotonic()
        try:
            with pytest.raises(OperationalError):
                latecomer.application_recorder()
        finally:
            latecomer.close()
        assert time.monotonic() - started < NATS_TIMEOUT + 1.0 + 1.5

        # The server comes back; the same recorder reconnects and reads again ...
        restarted = restart(server)
        wait_until(lambda: answers(recorder), "the recorder answers again")

        # ... and writes again, the first event intact.
        insert_once(recorder, second)
        assert recorder.select_events(originator_id) == [first, second]
        assert [n.state for n in recorder.select_notifications(None, 10)] == [
            b"before the crash",
            b"after the restart",
        ]
    finally:
        factory.close()
        if restarted is not None:
            restarted.stop()


@pytest.mark.slow
def test_a_subscription_open_across_a_restart_misses_nothing(server: EmbeddedNats) -> None:
    env = store_env(server)
    factory = JetStreamFactory(Environment(env=env))
    restarted: EmbeddedNats | None = None
    try:
        # Ten events are stored, and a subscriber reads them as they come.
        recorder = factory.application_recorder()
        originator_id = uuid4()
        events = [StoredEvent(originator_id, v, TOPIC, b"event %d" % v) for v in range(1, 21)]
        recorder.insert_events(events[:10])
        received: list[Notification] = []
        with recorder.subscribe(gt=None) as subscription:
            reader = threading.Thread(target=lambda: received.extend(subscription))
            reader.start()
            wait_until(lambda: len(received) == 10, "the subscriber has the first ten")

            # The server is killed and comes back on the same store and port.
            server.kill()
            restarted = restart(server)
            wait_until(lambda: answers(recorder), "the recorder answers again")

            # Ten more events reach the subscriber, which resumes where it was.
            recorder.insert_events(events[10:])
            wait_until(lambda: len(received) >= 20, "the subscriber has all twenty", timeout=45)
        reader.join(timeout=PATIENCE)
        assert not reader.is_alive()

        # Each once, in order, exactly as stored.
        assert [n.id for n in received] == list(range(1, 21))
        assert [n.state for n in received] == [e.state for e in events]
    finally:
        factory.close()
        if restarted is not None:
            restarted.stop()
