"""The data subjects' keys (`events.personal_data`) in the event store's own database.

With eventsourcing's SQLite and PostgreSQL persistence modules the keys are a
table beside the stored events, `personal_data_keys` (name, value), reached
through the event store's datastore (its connection pool): they outlive a
restart as the events do. `delete` removes the row. SQLite overwrites what it
deletes (`secure_delete`), and a checkpoint then clears the write-ahead log of
it; PostgreSQL keeps a deleted row's bytes until VACUUM reuses its space, and
in its write-ahead log (and any archive of it) until that is recycled.

`keys_beside(factory)` picks the store for an eventsourcing infrastructure
factory: its own (`personal_data_keys`, the JetStream module's KV bucket),
this table, or memory (the POPO module: its events do not outlive the
process either).
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from events.personal_data import KeyStore, MemoryKeyStore

TABLE = "personal_data_keys"


class SQLiteKeyStore:
    """Keys in the table `personal_data_keys` of an eventsourcing `SQLiteDatastore`."""

    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore
        with datastore.transaction(commit=True) as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, value BLOB NOT NULL)"
            )

    def get(self, name: str) -> bytes | None:
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(f"SELECT value FROM {TABLE} WHERE name = ?", (name,))
            row = cur.fetchone()
        return bytes(row[0]) if row is not None else None

    def create(self, name: str, value: bytes) -> bytes:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(
                f"INSERT INTO {TABLE} (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, value),
            )
            cur.execute(f"SELECT value FROM {TABLE} WHERE name = ?", (name,))
            return bytes(cur.fetchone()[0])

    def delete(self, name: str) -> bool:
        with self.datastore.get_connection(commit=True) as connection:
            # What this connection deletes is overwritten, not only marked free.
            connection.cursor().execute("PRAGMA secure_delete = ON")
            with connection.transaction(commit=True) as cur:
                cur.execute(f"SELECT 1 FROM {TABLE} WHERE name = ?", (name,))
                existed = cur.fetchone() is not None
                cur.execute(f"DELETE FROM {TABLE} WHERE name = ?", (name,))
            # The write-ahead log still holds the page as it was: copied back, emptied.
            connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return existed


class PostgresKeyStore:
    """Keys in the table `personal_data_keys` of an eventsourcing `PostgresDatastore`'s schema."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.table = f'"{datastore.schema}".{TABLE}'
        with datastore.transaction(commit=True) as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} "
                "(name TEXT PRIMARY KEY, value BYTEA NOT NULL)"
            )

    def get(self, name: str) -> bytes | None:
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(f"SELECT value FROM {self.table} WHERE name = %s", (name,))
            row = cur.fetchone()
        return bytes(row["value"]) if row is not None else None

    def create(self, name: str, value: bytes) -> bytes:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(
                f"INSERT INTO {self.table} (name, value) VALUES (%s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, value),
            )
            cur.execute(f"SELECT value FROM {self.table} WHERE name = %s", (name,))
            row = cur.fetchone()
        assert row is not None  # inserted, or there already
        return bytes(row["value"])

    def delete(self, name: str) -> bool:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(f"DELETE FROM {self.table} WHERE name = %s", (name,))
            return bool(cur.rowcount)


def keys_beside(factory: object) -> KeyStore:
    """Where the keys of personal data go beside `factory`'s stored events."""
    own = getattr(factory, "personal_data_keys", None)
    if own is not None:
        keys: KeyStore = own()
        return keys
    datastore = getattr(factory, "datastore", None)
    if isinstance(datastore, SQLiteDatastore):
        return SQLiteKeyStore(datastore)
    if isinstance(datastore, PostgresDatastore):
        return PostgresKeyStore(datastore)
    return MemoryKeyStore()
