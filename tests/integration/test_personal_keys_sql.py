"""The data subjects' keys beside eventsourcing's SQLite and PostgreSQL event stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from events.personal_data import KeyStore, MemoryKeyStore
from events.personal_keys_sql import PostgresKeyStore, SQLiteKeyStore, keys_beside
from services.coordination.application import Coordination
from tests.integration.test_index_snapshot import store as sqlite_event_store
from tests.unit.test_coordination import Clock, coordination
from tests.unit.test_personal_data import REPORTER, signal

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def behaves_as_a_key_store(keys: KeyStore, reopened: KeyStore) -> None:
    """Made once, read back (also by another store on the same database), deleted."""
    assert keys.get("abc") is None
    assert keys.create("abc", b"first") == b"first"
    assert reopened.create("abc", b"second") == b"first"  # made meanwhile elsewhere
    assert reopened.get("abc") == b"first"
    assert keys.delete("abc")
    assert reopened.get("abc") is None
    assert not keys.delete("abc")
    assert reopened.create("abc", b"third") == b"third"  # a new one, once forgotten
    assert keys.get("abc") == b"third"


def test_sqlite_keys_live_in_the_event_store_file_and_are_overwritten_when_deleted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.sqlite"
    first, second = SQLiteDatastore(str(path)), SQLiteDatastore(str(path))
    try:
        behaves_as_a_key_store(SQLiteKeyStore(first), SQLiteKeyStore(second))
        keys = SQLiteKeyStore(first)
        secret = os.urandom(32)
        keys.create("subject-1", secret)
        assert secret in b"".join(p.read_bytes() for p in tmp_path.iterdir())
        assert keys.delete("subject-1")
        # Neither the database file nor its write-ahead log holds the key any more.
        assert secret not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
    finally:
        first.close()
        second.close()


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"keys_{uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {name} CASCADE")


def test_postgres_keys_live_in_the_event_store_schema(schema: str) -> None:
    def datastore() -> PostgresDatastore:
        return PostgresDatastore("test", "127.0.0.1", 5432, "postgres", "", schema=schema)

    first, second = datastore(), datastore()
    try:
        behaves_as_a_key_store(PostgresKeyStore(first), PostgresKeyStore(second))
        with psycopg.connect(POSTGRES) as connection:
            stored = connection.execute(
                f"SELECT name, value FROM {schema}.personal_data_keys"
            ).fetchall()
        assert stored == [("abc", b"third")]
    finally:
        first.close()
        second.close()


def test_each_persistence_module_keeps_the_keys_beside_its_events(tmp_path: Path) -> None:
    clock = Clock()
    on_sqlite = coordination(sqlite_event_store(tmp_path / "data"), clock)
    in_memory = coordination({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock)
    try:
        assert isinstance(on_sqlite.personal_data.keys, SQLiteKeyStore)
        assert isinstance(in_memory.personal_data.keys, MemoryKeyStore)
        assert isinstance(keys_beside(object()), MemoryKeyStore)
    finally:
        on_sqlite.close()
        in_memory.close()


def test_personal_data_sealed_on_sqlite_is_readable_after_a_restart_until_forgotten(
    tmp_path: Path,
) -> None:
    env, clock = sqlite_event_store(tmp_path / "data"), Clock()
    sent = signal("wz-1")
    first = coordination(env, clock)
    try:
        parts = first.personal_data.seal("woonzorg", sent)
        assert parts is not None
    finally:
        first.close()

    again: Coordination = coordination(env, clock)
    try:
        assert {again.personal_data.unseal(p) for p in parts} == {REPORTER, "hh-8f3a21"}
        assert again.personal_data.forget("woonzorg", subject_ref="hh-8f3a21")
    finally:
        again.close()

    last = coordination(env, clock)
    try:
        assert {last.personal_data.unseal(p) for p in parts} == {REPORTER, None}
    finally:
        last.close()
