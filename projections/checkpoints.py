"""WAL checkpoints of the SQLite views, in a thread of their own.

By default the connection that commits copies the WAL back into the database
file once it is over 1,000 pages, and waits for the disk (`fsync`) before its
commit returns. A catch-up commit writes tens of megabytes, so every one of
them paid a checkpoint: measured on the 1M-event replay, about a third of the
writer's time was spent waiting for those fsyncs while the runner had the
next window ready. Here the writers do not checkpoint (`wal_autocheckpoint =
0`); after each commit this thread runs a PASSIVE checkpoint on its own
connection, which never blocks a writer or a reader, while the next commit is
written. Durability is SQLite's `synchronous=NORMAL` either way: a commit is
in the WAL when it returns.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


class BackgroundCheckpoints:
    """Checkpoints `path`'s WAL whenever asked (`after_commit`), one at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._asked = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def after_commit(self) -> None:
        """A commit landed: checkpoint soon (requests while one runs become one more)."""
        with self._lock:
            if self._stopping:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="views-checkpoints", daemon=True
                )
                self._thread.start()
        self._asked.set()

    def stop(self) -> None:
        """Finish the checkpoint under way, if any; no more after it."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._asked.set()
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout=30000")
            while True:
                self._asked.wait()
                self._asked.clear()
                if self._stopping:
                    return
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:  # the next commit asks again
                    log.warning("views.checkpoint_failed", error=repr(e))
        finally:
            connection.close()
