"""Where the picture's rows live: SQLite by default, PostgreSQL to scale out.

Rows are stored per *generation*: a complete set of views with its own
tracking position. The live runner writes the current generation; a rebuild
fills a new one beside it and then makes it current in one transaction, so
readers never see a half-built picture and nothing stops meanwhile. A commit
writes the changed rows and the tracking position in one transaction: every
event is applied exactly once, whatever crashes. (A replay also writes rows
ahead of the position, without it: `projections.runner` says why that is safe.)

Tables (prefix `<namespace>_`): `generations` (generation, position, state),
and per generation `issues_<n>` (id, buurt, status, owner, category, is_open,
body: the row's msgspec JSON, its signals included). A replay writes most rows
once (`projections.runner`), so the signals are rewritten with their row
rarely; kept in a table apart, they cost
more to write (each encoded and inserted apart) and a second lookup per row
made every read of a buurt slower (measured both; so they stay in the row).
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from projections.checkpoints import BackgroundCheckpoints
from projections.picture import CLOSED, FoldedRow, IssueRow

_encode = msgspec.json.Encoder().encode
_decode_row = msgspec.json.Decoder(IssueRow).decode
_decode_folded_row = msgspec.json.Decoder(FoldedRow).decode
NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
LIVE = "live"
WRITER_CACHE_KIB = 16 * 1024
# Pages of a new view database (see `SQLiteViewStore`).
PAGE_BYTES = 16 * 1024
_COLUMNS = ("id", "buurt", "status", "owner", "category", "is_open", "body")
# Values bound to one INSERT on SQLite (its limit is higher; see `_upsert`).
_INSERT_VALUES = 30_000
BUILDING = "building"
RETIRED = "retired"
Record = tuple[str, str, str, str | None, str, int, bytes]
_UPDATE = (
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
    " owner = excluded.owner, is_open = excluded.is_open, body = excluded.body"
)
# PostgreSQL: the temporary table a commit's rows are copied into, and their types.
_STAGED = "buurtbeeld_staged_rows"
_COPY_TYPES = ("text", "text", "text", "text", "text", "int4", "bytea")
_COPY_FROM = 1_000
# Status filters beyond the single statuses: CONTRACT.md's open, resolved and all.
OPEN = "open"
ALL = "all"


def redacted(url: str) -> str:
    """`url` without its password, for a log line."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


class ViewStoreError(RuntimeError):
    """The view database cannot be used (unreachable, or not a Buurtbeeld view database)."""


class ViewStore(ABC):
    """The picture's rows and tracking positions, in a SQL database."""

    placeholder = "?"
    # Column types: the keys (issue id, buurt) and the row's encoded body.
    key = "TEXT"
    blob = "BLOB"
    table_options = ""
    # Whether a read is quick enough to run on the event loop itself (a local file).
    reads_inline = True
    # Transactions that write side by side rather than one after another (one file has
    # one writer at a time; a server has a process per connection).
    parallel_writes = 1

    where = ""

    def __init__(self, namespace: str = "picture") -> None:
        if not NAMESPACE.fullmatch(namespace):
            raise ValueError(f"namespace {namespace!r} must match {NAMESPACE.pattern}")
        self.namespace = namespace
        self._generations = f"{namespace}_generations"

    # -- connections, per database ------------------------------------------

    @abstractmethod
    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A cursor in a write transaction, committed when the block ends without error."""

    @abstractmethod
    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """A cursor to read with (a consistent snapshot for the block)."""

    def close(self) -> None:  # noqa: B027 - nothing to close by default
        pass

    # -- generations --------------------------------------------------------

    def _issues(self, generation: int) -> str:
        return f"{self.namespace}_issues_{int(generation)}"

    def prepare(self) -> int:
        """Create the tables if needed; the current generation (1 in a new database)."""
        with self._transaction() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self._generations} ("
                " generation INTEGER PRIMARY KEY,"
                " position BIGINT,"
                " state TEXT NOT NULL)"
            )
            cur.execute(f"SELECT generation FROM {self._generations} WHERE state = '{LIVE}'")
            found = cur.fetchone()
            if found is not None:
                return int(found[0])
            self._create_generation(cur, 1, LIVE)
            return 1

    def current_generation(self) -> int:
        with self._reading() as cur:
            return self._current(cur)

    def _current(self, cur: Any) -> int:
        cur.execute(f"SELECT generation FROM {self._generations} WHERE state = '{LIVE}'")
        found = cur.fetchone()
        if found is None:
            raise ViewStoreError(f"no live generation in {self._generations}: call prepare()")
        return int(found[0])

    def new_generation(self) -> int:
        """An empty generation beside the live one, for a rebuild to fill."""
        with self._transaction() as cur:
            cur.execute(f"SELECT COALESCE(MAX(generation), 0) + 1 FROM {self._generations}")
            generation = int(cur.fetchone()[0])
            self._create_generation(cur, generation, BUILDING)
            return generation

    def _create_generation(self, cur: Any, generation: int, state: str) -> None:
        table = self._issues(generation)
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(
            f"CREATE TABLE {table} ("
            f" id {self.key} PRIMARY KEY, buurt {self.key} NOT NULL, status TEXT NOT NULL,"
            " owner TEXT, category TEXT NOT NULL, is_open INTEGER NOT NULL,"
            f" body {self.blob} NOT NULL){self.table_options}"
        )
        cur.execute(f"CREATE INDEX {table}_buurt ON {table} (buurt, is_open)")
        p = self.placeholder
        cur.execute(
            f"INSERT INTO {self._generations} (generation, position, state)"
            f" VALUES ({p}, NULL, {p})",
            (generation, state),
        )

    def switch_to(self, generation: int) -> int:
        """Make a built `generation` the live one; the one it replaces is retired.

        A retired generation's rows stay until the next switch (or start), so
        that a reader who looked up the live generation just before the switch
        still finds its table; the ones retired by earlier switches are dropped.
        """
        p = self.placeholder
        with self._transaction() as cur:
            old = self._current(cur)
            cur.execute(f"SELECT generation FROM {self._generations} WHERE state = '{RETIRED}'")
            for (earlier,) in cur.fetchall():
                cur.execute(f"DROP TABLE IF EXISTS {self._issues(int(earlier))}")
                cur.execute(
                    f"DELETE FROM {self._generations} WHERE generation = {p}", (int(earlier),)
                )
            cur.execute(
                f"UPDATE {self._generations} SET state = '{RETIRED}' WHERE generation = {p}",
                (old,),
            )
            cur.execute(
                f"UPDATE {self._generations} SET state = '{LIVE}' WHERE generation = {p}",
                (generation,),
            )
        return old

    def abandon(self, generation: int) -> None:
        """Drop a generation that is not live (a rebuild that did not finish)."""
        p = self.placeholder
        with self._transaction() as cur:
            if self._current(cur) == generation:
                raise ValueError(f"generation {generation} is live")
            cur.execute(f"DROP TABLE IF EXISTS {self._issues(generation)}")
            cur.execute(f"DELETE FROM {self._generations} WHERE generation = {p}", (generation,))

    def abandon_unfinished(self) -> list[int]:
        """Drop every generation a rebuild left behind, and the retired ones."""
        with self._reading() as cur:
            cur.execute(f"SELECT generation FROM {self._generations} WHERE state <> '{LIVE}'")
            left = [int(row[0]) for row in cur.fetchall()]
        for generation in left:
            self.abandon(generation)
        return left

    # -- the runner's side --------------------------------------------------

    def position(self, generation: int) -> int | None:
        """The last event position applied to `generation`; None before the first."""
        with self._reading() as cur:
            cur.execute(
                f"SELECT position FROM {self._generations} WHERE generation = {self.placeholder}",
                (generation,),
            )
            found = cur.fetchone()
        if found is None:
            raise ViewStoreError(f"generation {generation} is gone")
        return None if found[0] is None else int(found[0])

    def load(
        self, generation: int, ids: Iterable[str], *, folded: bool = False
    ) -> dict[str, IssueRow]:
        """The stored rows of `ids` in `generation`; with `folded`, as `FoldedRow`s."""
        decode = _decode_folded_row if folded else _decode_row
        wanted = list(ids)
        rows: dict[str, IssueRow] = {}
        with self._reading() as cur:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ", ".join([self.placeholder] * len(chunk))
                cur.execute(
                    f"SELECT body FROM {self._issues(generation)} WHERE id IN ({marks})", chunk
                )
                for (body,) in cur.fetchall():
                    row = decode(bytes(body))
                    rows[row.id] = row
        return rows

    @staticmethod
    def records(rows: Iterable[IssueRow]) -> list[Record]:
        """`rows` as the database stores them (done by the caller, off the writing thread)."""
        return [
            (
                r.id,
                r.buurt,
                r.status,
                r.owner,
                r.category,
                0 if r.status in CLOSED else 1,
                _encode(r),
            )
            for r in rows
        ]

    def commit(
        self,
        generation: int,
        records: Sequence[Record],
        position: int | None,
        more: Iterable[Sequence[Record]] = (),
    ) -> bool:
        """Store `records` (see `records`) and `position` for `generation` in one transaction.

        With `position` None the rows are stored and the position stays: rows of
        issues ahead of it, which the runner may write early (`projections.runner`).
        False, writing nothing, when `generation` has been retired meanwhile
        (a rebuild switched over): the caller follows the live one instead.
        `more`: further records, written in the same transaction as they come
        (the runner encodes them meanwhile); an exception from it undoes it all.
        """
        p = self.placeholder
        with self._transaction() as cur:
            cur.execute(
                f"SELECT state, position FROM {self._generations} WHERE generation = {p}",
                (generation,),
            )
            found = cur.fetchone()
            if found is None or found[0] == RETIRED:
                return False
            if position is not None and found[1] is not None and position <= int(found[1]):
                raise ViewStoreError(
                    f"generation {generation} is at {found[1]}; refusing to go back to {position}"
                )
            if records:
                self._upsert(cur, self._issues(generation), records)
            for later in more:
                self._upsert(cur, self._issues(generation), later)
            if position is not None:
                cur.execute(
                    f"UPDATE {self._generations} SET position = {p} WHERE generation = {p}",
                    (position, generation),
                )
        return True

    def _upsert(self, cur: Any, table: str, records: Sequence[Record]) -> None:
        p = self.placeholder
        cur.executemany(
            f"INSERT INTO {table} ({', '.join(_COLUMNS)})"
            f" VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}){_UPDATE}",
            records,
        )

    # -- the readers' side --------------------------------------------------

    def issues(
        self,
        buurt: str,
        status: str = OPEN,
        owner: str | None = None,
        category: str | None = None,
    ) -> list[IssueRow]:
        """The live picture's rows of `buurt`: `status` open, all, or one status."""
        p = self.placeholder
        where = [f"buurt = {p}"]
        params: list[Any] = [buurt]
        if status == OPEN:
            where.append("is_open = 1")
        elif status != ALL:
            where.append(f"status = {p}")
            params.append(status)
        if owner is not None:
            where.append(f"owner = {p}")
            params.append(owner)
        if category is not None:
            where.append(f"category = {p}")
            params.append(category)
        with self._reading() as cur:
            table = self._issues(self._current(cur))
            cur.execute(f"SELECT body FROM {table} WHERE {' AND '.join(where)}", params)
            return [_decode_row(bytes(body)) for (body,) in cur.fetchall()]

    def issue(self, issue_id: str) -> IssueRow | None:
        with self._reading() as cur:
            table = self._issues(self._current(cur))
            cur.execute(f"SELECT body FROM {table} WHERE id = {self.placeholder}", (issue_id,))
            found = cur.fetchone()
        return None if found is None else _decode_row(bytes(found[0]))

    def live_position(self) -> int | None:
        with self._reading() as cur:
            return self._position_of(cur, self._current(cur))

    def _position_of(self, cur: Any, generation: int) -> int | None:
        cur.execute(
            f"SELECT position FROM {self._generations} WHERE generation = {self.placeholder}",
            (generation,),
        )
        found = cur.fetchone()
        return None if found is None or found[0] is None else int(found[0])


class SQLiteViewStore(ViewStore):
    """The views in one SQLite file (WAL): one writer, a connection per reading thread.

    `synchronous=NORMAL`: a power cut may lose the last commits, never half of
    one; the runner then applies those events again from the lost position.

    A new file gets 16 KB pages (`PAGE_BYTES`; SQLite's default is 4 KB, and a
    file keeps the size it was made with): a row is ~1.3 KB, and a replay's
    writes and checkpoints cost per page (the 1M-event rebuild's writer thread
    2.7 -> 1.8 CPU s, its last commit 0.6 -> 0.48 s). A buurt's rows, each on a
    page of its own, cost more to read the first time (200 rows: ~1.9 -> ~2.5 ms
    in SQLite; after that the live picture answers from memory). Reading through
    a memory map made that ~1.2 ms with either size, but the mapped pages count
    in the process's resident size: after the query benchmark's runs 557 MB
    instead of 454 (measured), so it is not used.
    """

    def __init__(self, path: Path, namespace: str = "picture") -> None:
        super().__init__(namespace)
        self.path = path
        self.where = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._writer_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._checkpoints = BackgroundCheckpoints(path)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            connection.execute(f"PRAGMA page_size={PAGE_BYTES}")  # a new file only
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._writer_lock:
            connection = self._connection()
            if not getattr(self._local, "writes", False):
                # A catch-up commit touches pages all over the file: with the default
                # 2 MB cache most are read back (pread) and spilled (pwrite) each time.
                connection.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
                # Some builds zero what a rewritten row leaves behind: the views hold
                # nothing the event log does not, and the writes are what a replay waits for.
                connection.execute("PRAGMA secure_delete = OFF")
                # Checkpoints run beside the writer, not in its commits (`projections.checkpoints`).
                connection.execute("PRAGMA wal_autocheckpoint = 0")
                self._local.writes = True
            cur = connection.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
                self._checkpoints.after_commit()
            finally:
                cur.close()

    def _upsert(self, cur: Any, table: str, records: Sequence[Record]) -> None:
        """Thousands of rows to an INSERT: sqlite3 lets go of the GIL for each statement
        it runs and must wait for it again after, while the event loop folds the next
        window. One statement per row (`executemany`) would wait once per row."""
        per = _INSERT_VALUES // len(_COLUMNS)
        insert = f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES"
        for start in range(0, len(records), per):
            chunk = records[start : start + per]
            cur.execute(
                f"{insert} {_values(len(chunk))}{_UPDATE}",
                [value for record in chunk for value in record],
            )

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Cursor]:
        cur = self._connection().cursor()
        cur.execute("BEGIN")
        try:
            yield cur
        finally:
            cur.execute("COMMIT")
            cur.close()

    def close(self) -> None:
        self._checkpoints.stop()
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()


class PostgresViewStore(ViewStore):
    """The views in PostgreSQL, through a small psycopg connection pool.

    `synchronous_commit = off` for the views' transactions: as with SQLite's
    NORMAL, a crash may lose the last commits, never half of one.
    """

    placeholder = "%s"
    # Keys compared byte by byte, not by the database's locale (strcoll): every
    # insert compares them in two indexes, and ids and buurt codes are ASCII.
    key = 'TEXT COLLATE "C"'
    blob = "BYTEA"
    # Room on each page for a row's next version: most rewrites then change no index
    # (a heap-only tuple); following the live log rewrites a row at each of its events.
    table_options = " WITH (fillfactor = 70)"
    reads_inline = False
    parallel_writes = 2

    def __init__(self, url: str, namespace: str = "picture", max_size: int = 8) -> None:
        super().__init__(namespace)
        from psycopg_pool import ConnectionPool

        self.url = url
        self.where = redacted(url)
        self._pool = ConnectionPool(
            url, min_size=1, max_size=max_size, open=False, kwargs={"autocommit": False}
        )
        try:
            self._pool.open(wait=True, timeout=10)
            if self._has_lz4():
                # The bodies large enough to be compressed (TOAST), in lz4: several
                # times cheaper to write than the default pglz.
                self.blob = "BYTEA COMPRESSION lz4"
        except Exception as e:
            self._pool.close()
            raise ViewStoreError(f"cannot reach the view database: {e}") from e

    def _has_lz4(self) -> bool:
        """Whether the server compresses columns with lz4 (PostgreSQL 14 on, built with it)."""
        with self._reading() as cur:
            cur.execute(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                " WHERE name = 'default_toast_compression'"
            )
            found = cur.fetchone()
        return bool(found and found[0])

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._pool.connection() as connection, connection.cursor() as cur:
            # As SQLite's synchronous=NORMAL: a crash may lose the last commits (the
            # runner applies those events again), never half of one; no commit waits
            # for the disk.
            cur.execute("SET LOCAL synchronous_commit = off")
            yield cur

    def _upsert(self, cur: Any, table: str, records: Sequence[Record]) -> None:
        """Rows in one statement; from `_COPY_FROM` rows on, copied first.

        A few rows (following the live log) go as column arrays, unnested by one
        INSERT: one round trip. Many (a replay's commits) are copied (binary
        COPY) into a temporary table of the connection's, then inserted from
        there in one statement, as COPY cannot upsert itself: ~0.6 s per 40,000
        rows, where the arrays cost ~1.1 s (measured; the two ways cost the same
        near a few hundred rows).
        """
        if len(records) < _COPY_FROM:
            cur.execute(
                f"INSERT INTO {table} ({', '.join(_COLUMNS)})"
                " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[],"
                f" %b::text[], %b::int[], %b::bytea[]){_UPDATE}",
                [list(column) for column in zip(*records, strict=True)],
            )
            return
        columns = ", ".join(_COLUMNS)
        cur.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGED} ("
            " id TEXT, buurt TEXT, status TEXT, owner TEXT, category TEXT,"
            f" is_open INTEGER, body {self.blob}) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY {_STAGED} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_COPY_TYPES)
            for record in records:
                copy.write_row(record)
        cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_STAGED}{_UPDATE}")
        # Emptied now, not only at the commit (ON COMMIT DELETE ROWS): a transaction
        # may upsert piece after piece (`ProjectionRunner._write_as_encoded`), and
        # each piece's statement would upsert every earlier piece's rows again.
        cur.execute(f"TRUNCATE {_STAGED}")

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        with self._pool.connection() as connection:
            connection.read_only = True
            try:
                with connection.cursor() as cur:
                    yield cur
            finally:
                connection.rollback()
                connection.read_only = False

    def close(self) -> None:
        self._pool.close()


@functools.lru_cache(maxsize=8)
def _values(rows: int) -> str:
    """`(?, ?, …), …`: placeholders for `rows` records."""
    row = f"({', '.join('?' * len(_COLUMNS))})"
    return ", ".join([row] * rows)


def open_view_store(url: str | None, sqlite_path: Path, namespace: str = "picture") -> ViewStore:
    """PostgreSQL for postgresql://…, SQLite for sqlite:///path, else SQLite at `sqlite_path`."""
    if url and url.startswith(("postgresql://", "postgres://")):
        return PostgresViewStore(url, namespace)
    if url and url.startswith("sqlite:///"):
        return SQLiteViewStore(Path(url.removeprefix("sqlite://")), namespace)
    if url:
        raise ValueError("BUURTBEELD_VIEWS_URL: use postgresql://… or sqlite:///path")
    return SQLiteViewStore(sqlite_path, namespace)
