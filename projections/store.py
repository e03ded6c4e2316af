"""Where the picture's rows live: SQLite by default, PostgreSQL to scale out.

Rows are stored per *generation*: a complete set of views with its own
tracking position. The live runner writes the current generation; a rebuild
fills a new one beside it and then makes it current in one transaction, so
readers never see a half-built picture and nothing stops meanwhile. A commit
writes the changed rows and the tracking position in one transaction: every
event is applied exactly once, whatever crashes.

Tables (prefix `<namespace>_`): `generations` (generation, position, state),
and per generation `issues_<n>` (id, buurt, status, owner, category, is_open,
body: the row's msgspec JSON without its signals) and `signals_<n>` (issue_id,
version, body: one `SignalSummary`'s JSON). A row's signals are only ever
appended, so they are written once each, apart: a change of status rewrites a
few hundred bytes, not every signal the issue has had. `issues` and `issue`
put them back (in the order of the issue's versions) and return whole rows.

A database of the layout before `signals_<n>` existed has its live views
replaced by an empty generation at `prepare`: the runner fills it from the log.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from projections.picture import CLOSED, IssueRow, SignalSummary

_encode = msgspec.json.Encoder().encode
_decode_row = msgspec.json.Decoder(IssueRow).decode
# (issue id, the issue's version that brought it, the signal): one row of `signals_<n>`.
NewSignal = tuple[str, int, SignalSummary]
_SIGNALS_KEY = b',"signals":['
NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
LIVE = "live"
WRITER_CACHE_KIB = 16 * 1024
# Values bound to one INSERT on SQLite (its limit here is far higher; see `_insert`).
_INSERT_VALUES = 30_000
BUILDING = "building"
RETIRED = "retired"
_UPDATE = (
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
    " owner = excluded.owner, is_open = excluded.is_open, body = excluded.body"
)
# Status filters beyond the single statuses: CONTRACT.md's open, resolved and all.
OPEN = "open"
ALL = "all"


def redacted(url: str) -> str:
    """`url` without its password, for a log line."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


class ViewStoreError(RuntimeError):
    """The view database cannot be used (unreachable, or not a Buurtbeeld view database)."""


@dataclass(frozen=True, slots=True)
class Changes:
    """Rows and new signals, encoded as one kind of database writes them (`ViewStore.changes`)."""

    rows: int
    signals: int
    payload: Any


def _without_signals(row: IssueRow) -> IssueRow:
    return msgspec.structs.replace(row, signals=[]) if row.signals else row


def _whole_row(body: bytes, signals: bytes) -> IssueRow:
    """A stored row's body (no `signals` key) with its signals' JSON, comma-separated."""
    if not signals:
        return _decode_row(body)
    whole: IssueRow = _decode_row(b"".join((body[:-1], _SIGNALS_KEY, signals, b"]}")))
    return whole


class ViewStore(ABC):
    """The picture's rows and tracking positions, in a SQL database."""

    placeholder = "?"
    blob = "BLOB"
    # Whether a read is quick enough to run on the event loop itself (a local file).
    reads_inline = True

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

    def _signals(self, generation: int) -> str:
        return f"{self.namespace}_signals_{int(generation)}"

    @abstractmethod
    def _has_table(self, cur: Any, table: str) -> bool:
        """Whether `table` exists."""

    def _drop_generation(self, cur: Any, generation: int) -> None:
        cur.execute(f"DROP TABLE IF EXISTS {self._issues(generation)}")
        cur.execute(f"DROP TABLE IF EXISTS {self._signals(generation)}")
        cur.execute(
            f"DELETE FROM {self._generations} WHERE generation = {self.placeholder}", (generation,)
        )

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
                live = int(found[0])
                if self._has_table(cur, self._signals(live)):
                    return live
                # Views of the layout before signals_<n>: start them afresh from the log.
                cur.execute(f"SELECT generation FROM {self._generations}")
                for (old,) in cur.fetchall():
                    self._drop_generation(cur, int(old))
                self._create_generation(cur, live + 1, LIVE)
                return live + 1
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
        table, signals = self._issues(generation), self._signals(generation)
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"DROP TABLE IF EXISTS {signals}")
        cur.execute(
            f"CREATE TABLE {table} ("
            " id TEXT PRIMARY KEY, buurt TEXT NOT NULL, status TEXT NOT NULL,"
            " owner TEXT, category TEXT NOT NULL, is_open INTEGER NOT NULL,"
            f" body {self.blob} NOT NULL)"
        )
        cur.execute(f"CREATE INDEX {table}_buurt ON {table} (buurt, is_open)")
        # Appended in log order; found by issue through the index.
        cur.execute(
            f"CREATE TABLE {signals} ("
            f" issue_id TEXT NOT NULL, version INTEGER NOT NULL, body {self.blob} NOT NULL)"
        )
        cur.execute(f"CREATE UNIQUE INDEX {signals}_issue ON {signals} (issue_id, version)")
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
                self._drop_generation(cur, int(earlier))
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
        with self._transaction() as cur:
            if self._current(cur) == generation:
                raise ValueError(f"generation {generation} is live")
            self._drop_generation(cur, generation)

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
        self, generation: int, ids: Iterable[str], *, signals: bool = True
    ) -> dict[str, IssueRow]:
        """The rows of `ids` that `generation` holds, by id.

        With `signals` False, without their signals: what the runner folds into
        (it only ever appends signals, and writes only the new ones).
        """
        wanted = list(ids)
        rows: dict[str, IssueRow] = {}
        with self._reading() as cur:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ", ".join([self.placeholder] * len(chunk))
                if signals:
                    found = self._whole_rows(cur, generation, f"i.id IN ({marks})", chunk)
                else:
                    cur.execute(
                        f"SELECT body FROM {self._issues(generation)} WHERE id IN ({marks})", chunk
                    )
                    found = [_decode_row(body) for (body,) in cur.fetchall()]
                for row in found:
                    rows[row.id] = row
        return rows

    def _whole_rows(self, cur: Any, generation: int, where: str, params: Any) -> list[IssueRow]:
        """The rows of `issues_<n> i` that `where` selects, each with its signals."""
        cur.execute(
            f"SELECT i.id, i.body, s.body FROM {self._issues(generation)} i"
            f" LEFT JOIN {self._signals(generation)} s ON s.issue_id = i.id"
            f" WHERE {where} ORDER BY i.id, s.version",
            params,
        )
        rows: list[IssueRow] = []
        current: str | None = None
        body = b""
        signals: list[bytes] = []
        for issue_id, issue_body, signal_body in cur.fetchall():
            if issue_id != current:
                if current is not None:
                    rows.append(_whole_row(body, b",".join(signals)))
                current, body, signals = issue_id, issue_body, []
            if signal_body is not None:
                signals.append(signal_body)
        if current is not None:
            rows.append(_whole_row(body, b",".join(signals)))
        return rows

    @abstractmethod
    def changes(self, rows: Collection[IssueRow], signals: Sequence[NewSignal]) -> Changes:
        """`rows` and the new `signals` as `commit` writes them; made by the caller, off
        the writing thread. The rows' own `signals` lists are not written (see `signals`)."""

    def commit(self, generation: int, changes: Changes, position: int) -> bool:
        """Write `changes` (see `changes`) and `position` for `generation` in one transaction.

        False, writing nothing, when `generation` has been retired meanwhile
        (a rebuild switched over): the caller follows the live one instead.
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
            if found[1] is not None and position <= int(found[1]):
                raise ViewStoreError(
                    f"generation {generation} is at {found[1]}; refusing to go back to {position}"
                )
            if changes.rows:
                self._write_rows(cur, self._issues(generation), changes)
            if changes.signals:
                self._write_signals(cur, self._signals(generation), changes)
            cur.execute(
                f"UPDATE {self._generations} SET position = {p} WHERE generation = {p}",
                (position, generation),
            )
        return True

    @abstractmethod
    def _write_rows(self, cur: Any, table: str, changes: Changes) -> None:
        """Insert or replace the rows of `changes` in `table`."""

    @abstractmethod
    def _write_signals(self, cur: Any, table: str, changes: Changes) -> None:
        """Append the signals of `changes` to `table`."""

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
        where = [f"i.buurt = {p}"]
        params: list[Any] = [buurt]
        if status == OPEN:
            where.append("i.is_open = 1")
        elif status != ALL:
            where.append(f"i.status = {p}")
            params.append(status)
        if owner is not None:
            where.append(f"i.owner = {p}")
            params.append(owner)
        if category is not None:
            where.append(f"i.category = {p}")
            params.append(category)
        with self._reading() as cur:
            return self._whole_rows(cur, self._current(cur), " AND ".join(where), params)

    def issue(self, issue_id: str) -> IssueRow | None:
        with self._reading() as cur:
            found = self._whole_rows(
                cur, self._current(cur), f"i.id = {self.placeholder}", [issue_id]
            )
        return found[0] if found else None

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

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
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
                # Some builds zero what a rewritten row leaves behind: views hold no
                # secret that the log does not, and the writes are what we wait for.
                connection.execute("PRAGMA secure_delete = OFF")
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
            finally:
                cur.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Cursor]:
        cur = self._connection().cursor()
        cur.execute("BEGIN")
        try:
            yield cur
        finally:
            cur.execute("COMMIT")
            cur.close()

    def _has_table(self, cur: Any, table: str) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return cur.fetchone() is not None

    def changes(self, rows: Collection[IssueRow], signals: Sequence[NewSignal]) -> Changes:
        """Every value in one flat list per table, for a few long INSERTs (`_insert`)."""
        return Changes(
            len(rows),
            len(signals),
            (
                [
                    value
                    for r in rows
                    for value in (
                        r.id,
                        r.buurt,
                        r.status,
                        r.owner,
                        r.category,
                        0 if r.status in CLOSED else 1,
                        _encode(_without_signals(r)),
                    )
                ],
                [
                    value
                    for issue_id, version, signal in signals
                    for value in (issue_id, version, _encode(signal))
                ],
            ),
        )

    def _write_rows(self, cur: Any, table: str, changes: Changes) -> None:
        columns = "id, buurt, status, owner, category, is_open, body"
        _insert(cur, f"INSERT INTO {table} ({columns}) VALUES", 7, changes.payload[0], _UPDATE)

    def _write_signals(self, cur: Any, table: str, changes: Changes) -> None:
        _insert(cur, f"INSERT INTO {table} (issue_id, version, body) VALUES", 3, changes.payload[1])

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()


class PostgresViewStore(ViewStore):
    """The views in PostgreSQL, through a small psycopg connection pool."""

    placeholder = "%s"
    blob = "BYTEA"
    reads_inline = False

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
        except Exception as e:
            self._pool.close()
            raise ViewStoreError(f"cannot reach the view database: {e}") from e

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._pool.connection() as connection, connection.cursor() as cur:
            yield cur

    def _has_table(self, cur: Any, table: str) -> bool:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        return bool(cur.fetchone()[0])

    def changes(self, rows: Collection[IssueRow], signals: Sequence[NewSignal]) -> Changes:
        """Column arrays, for one statement per table (see `_write_rows`)."""
        return Changes(
            len(rows),
            len(signals),
            (
                [
                    [r.id for r in rows],
                    [r.buurt for r in rows],
                    [r.status for r in rows],
                    [r.owner for r in rows],
                    [r.category for r in rows],
                    [0 if r.status in CLOSED else 1 for r in rows],
                    [_encode(_without_signals(r)) for r in rows],
                ],
                [
                    [issue_id for issue_id, _, _ in signals],
                    [version for _, version, _ in signals],
                    [_encode(signal) for _, _, signal in signals],
                ],
            ),
        )

    def _write_rows(self, cur: Any, table: str, changes: Changes) -> None:
        """All rows in one statement (column arrays, unnested): one round trip, and
        no per-row work in Python, where `executemany` binds every row by itself."""
        cur.execute(
            f"INSERT INTO {table} (id, buurt, status, owner, category, is_open, body)"
            " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[],"
            f" %b::text[], %b::int[], %b::bytea[]){_UPDATE}",
            changes.payload[0],
        )

    def _write_signals(self, cur: Any, table: str, changes: Changes) -> None:
        cur.execute(
            f"INSERT INTO {table} (issue_id, version, body)"
            " SELECT * FROM unnest(%b::text[], %b::int[], %b::bytea[])",
            changes.payload[1],
        )

    def _whole_rows(self, cur: Any, generation: int, where: str, params: Any) -> list[IssueRow]:
        """One row per issue, its signals joined in order by the server."""
        cur.execute(
            f"SELECT i.body, (SELECT string_agg(s.body, ','::bytea ORDER BY s.version)"
            f" FROM {self._signals(generation)} s WHERE s.issue_id = i.id)"
            f" FROM {self._issues(generation)} i WHERE {where}",
            params,
        )
        return [_whole_row(body, signals or b"") for body, signals in cur.fetchall()]

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


def _insert(cur: Any, insert: str, width: int, values: list[Any], conflict: str = "") -> None:
    """`values`, `width` to a row, in INSERTs of thousands of rows each.

    sqlite3 lets go of the GIL for each statement it runs, and must wait for
    it again after: one statement per row would wait once per row, while the
    event loop folds. A few long statements wait a few times.
    """
    per = _INSERT_VALUES // width * width
    for start in range(0, len(values), per):
        chunk = values[start : start + per]
        cur.execute(f"{insert} {_marks(width, len(chunk) // width)}{conflict}", chunk)


@functools.lru_cache(maxsize=32)
def _marks(width: int, rows: int) -> str:
    row = f"({', '.join('?' * width)})"
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
