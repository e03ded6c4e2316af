"""The JetStream event store's own promises, beyond the library's test cases."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import nats
import nats.js.errors
import pytest
from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import Environment
from nats.js.api import StorageType, StreamConfig

from events.jetstream import JetStreamFactory, UnsupportedServerError
from services.embedded_nats import EmbeddedNats, free_port
from tests.integration.jetstream_support import fresh_store_env


@pytest.fixture
def factories(shared_nats: EmbeddedNats) -> Iterator[list[JetStreamFactory]]:
    made: list[JetStreamFactory] = []
    yield made
    for factory in made:
        factory.close()


def new_factory(made: list[JetStreamFactory], env: dict[str, str]) -> JetStreamFactory:
    factory = JetStreamFactory(Environment(env=env))
    made.append(factory)
    return factory


def raw(nats_url: str, coro_fn):  # type: ignore[no-untyped-def]
    """Run `coro_fn(js)` with a plain nats-py connection, as a partner would."""

    async def main():  # type: ignore[no-untyped-def]
        nc = await nats.connect(nats_url)
        try:
            return await coro_fn(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


def test_events_are_plain_messages_under_the_buurt_subject(
    shared_nats: EmbeddedNats, factories: list[JetStreamFactory]
) -> None:
    env = fresh_store_env(shared_nats.url)
    recorder = new_factory(factories, env).application_recorder()
    prefix, stream = env["NATS_SUBJECT_PREFIX"], env["NATS_STREAM"]

    # An issue of buurt BU0363FF03 is stored ...
    ids = recorder.insert_events([StoredEvent("BU0363FF03.issue.42", 1, "Opened", b'{"a":1}')])

    # ... as one message a partner can read at events.<buurt>.issue.<id>.
    msg = raw(shared_nats.url, lambda js: js.get_last_msg(stream, f"{prefix}.BU0363FF03.issue.42"))
    assert msg.seq == ids[0] == 1
    assert msg.data == b'{"a":1}'
    assert msg.headers["Es-Topic"] == "Opened"
    assert msg.headers["Es-Version"] == "1"


def test_the_stream_is_immutable(
    shared_nats: EmbeddedNats, factories: list[JetStreamFactory]
) -> None:
    env = fresh_store_env(shared_nats.url)
    recorder = new_factory(factories, env).application_recorder()
    recorder.insert_events([StoredEvent("BU0363FF03.issue.1", 1, "Opened", b"{}")])
    stream = env["NATS_STREAM"]

    # Its configuration says so ...
    info = raw(shared_nats.url, lambda js: js.stream_info(stream))
    assert info.config.deny_delete and info.config.deny_purge
    assert info.config.allow_atomic and info.config.allow_direct
    assert not info.config.max_age
    assert info.config.storage == StorageType.FILE

    # ... and the server enforces it.
    with pytest.raises(nats.js.errors.APIError):
        raw(shared_nats.url, lambda js: js.purge_stream(stream))
    with pytest.raises(nats.js.errors.APIError):
        raw(shared_nats.url, lambda js: js.delete_msg(stream, 1))


def test_a_writer_with_a_stale_view_retries_or_refuses_correctly(
    shared_nats: EmbeddedNats, factories: list[JetStreamFactory]
) -> None:
    env = fresh_store_env(shared_nats.url)
    one = new_factory(factories, env).application_recorder()
    two = new_factory(factories, env).application_recorder()
    issue = "BU0363FF03.issue.7"

    # One process opens the issue; another, which never read it, appends version 2.
    one.insert_events([StoredEvent(issue, 1, "Opened", b"1")])
    two.insert_events([StoredEvent(issue, 2, "Claimed", b"2")])

    # The first process still thinks version 1 is last: version 3 succeeds after a re-read ...
    one.insert_events([StoredEvent(issue, 3, "Resolved", b"3")])
    # ... but version 2 again is a real clash, from either process.
    with pytest.raises(IntegrityError):
        one.insert_events([StoredEvent(issue, 2, "Claimed", b"again")])
    with pytest.raises(IntegrityError):
        two.insert_events([StoredEvent(issue, 3, "Resolved", b"again")])

    assert [e.state for e in two.select_events(issue)] == [b"1", b"2", b"3"]


def test_events_and_their_tracking_are_written_together_or_not_at_all(
    shared_nats: EmbeddedNats, factories: list[JetStreamFactory]
) -> None:
    recorder = new_factory(factories, fresh_store_env(shared_nats.url)).process_recorder()
    recorder.insert_events(
        [StoredEvent("BU0363FF03.issue.1", 1, "Opened", b"")], tracking=Tracking("Intake", 10)
    )

    # A new event with an already-tracked position is refused whole: the event is not stored.
    with pytest.raises(IntegrityError):
        recorder.insert_events(
            [StoredEvent("BU0363FF03.issue.2", 1, "Opened", b"")], tracking=Tracking("Intake", 10)
        )
    assert recorder.select_events("BU0363FF03.issue.2") == []

    # A new event clashing with a stored one takes its tracking record down with it.
    with pytest.raises(IntegrityError):
        recorder.insert_events(
            [
                StoredEvent("BU0363FF03.issue.3", 1, "Opened", b""),
                StoredEvent("BU0363FF03.issue.1", 1, "Opened", b""),
            ],
            tracking=Tracking("Intake", 11),
        )
    assert recorder.max_tracking_id("Intake") == 10
    assert recorder.select_events("BU0363FF03.issue.3") == []


def test_more_than_one_atomic_batch_is_refused_clearly(
    shared_nats: EmbeddedNats, factories: list[JetStreamFactory]
) -> None:
    recorder = new_factory(factories, fresh_store_env(shared_nats.url)).application_recorder()
    events = [StoredEvent(uuid4(), 1, "t", b"") for _ in range(1001)]
    with pytest.raises(ProgrammingError, match="at most 1000"):
        recorder.insert_events(events)
    assert recorder.max_notification_id() is None


def test_invalid_originator_ids_are_refused_before_anything_is_sent(
    shared_nats: EmbeddedNats, factories: list[JetStreamFactory]
) -> None:
    recorder = new_factory(factories, fresh_store_env(shared_nats.url)).application_recorder()
    with pytest.raises(ProgrammingError, match="not a valid NATS subject token"):
        recorder.insert_events([StoredEvent("BU0363FF03.issue.a b", 1, "t", b"")])
    with pytest.raises(ProgrammingError, match="empty subject token"):
        recorder.select_events("BU0363FF03..x")


def test_an_existing_stream_without_atomic_batches_is_refused(
    shared_nats: EmbeddedNats, factories: list[JetStreamFactory]
) -> None:
    env = fresh_store_env(shared_nats.url)
    subjects = [f"{env['NATS_SUBJECT_PREFIX']}.>", f"{env['NATS_SUBJECT_PREFIX']}-tracking.>"]
    raw(
        shared_nats.url,
        lambda js: js.add_stream(StreamConfig(name=env["NATS_STREAM"], subjects=subjects)),
    )
    with pytest.raises(ProgrammingError, match="allow_atomic is off"):
        new_factory(factories, env).application_recorder()


def test_an_unreachable_server_fails_within_the_timeout(factories: list[JetStreamFactory]) -> None:
    env = fresh_store_env(f"nats://127.0.0.1:{free_port()}")
    env["NATS_TIMEOUT"] = "1"
    started = time.monotonic()
    with pytest.raises(OperationalError, match="cannot connect to NATS"):
        new_factory(factories, env).application_recorder()
    assert time.monotonic() - started < 5


def test_a_dead_server_makes_calls_fail_within_the_timeout(
    tmp_path,
    factories: list[JetStreamFactory],  # type: ignore[no-untyped-def]
) -> None:
    server = EmbeddedNats(data_dir=tmp_path / "nats").start()
    env = fresh_store_env(server.url)
    env["NATS_TIMEOUT"] = "1"
    recorder = new_factory(factories, env).application_recorder()
    recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"")])

    server.kill()
    for call in (
        lambda: recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"")]),
        lambda: recorder.select_notifications(None, 10),
        recorder.max_notification_id,
    ):
        started = time.monotonic()
        with pytest.raises(OperationalError):
            call()
        assert time.monotonic() - started < 3


class OldNatsServer:
    """Speaks just enough of the NATS protocol to announce an old version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            info = json.dumps(
                {
                    "server_id": "old",
                    "version": self.version,
                    "proto": 1,
                    "headers": True,
                    "host": "127.0.0.1",
                    "port": self.port,
                    "max_payload": 1048576,
                }
            )
            conn.sendall(f"INFO {info}\r\n".encode())
            buffer = b""
            while b"PING\r\n" not in buffer:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                buffer += chunk
            conn.sendall(b"PONG\r\n")
            conn.recv(4096)  # until the client hangs up
            conn.close()

    def close(self) -> None:
        self.listener.close()


def test_a_server_older_than_2_12_is_refused_naming_both_versions(
    factories: list[JetStreamFactory],
) -> None:
    old = OldNatsServer("2.9.25")
    try:
        env = fresh_store_env(f"nats://127.0.0.1:{old.port}")
        with pytest.raises(UnsupportedServerError, match=r"2\.9\.25.*>= 2\.12"):
            new_factory(factories, env).application_recorder()
    finally:
        old.close()
