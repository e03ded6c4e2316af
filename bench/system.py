"""A real `buurtbeeld up` for the benchmarks: started, watched through its JSON log, stopped.

The data dir holds the bench organisations (`bench-<id>` tokens) and 200
buurten (`bench.eventlog`), so no demo is seeded; the embedded nats-server
keeps its store under `<data>/nats`, where `EventLog.copy_to` puts a generated
log. Nothing here uses the system's NATS on 4222: the embedded server gets a
free port.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.eventlog import buurten_toml, organisations_toml
from services.embedded_nats import free_port


def rss_kib(pid: int) -> tuple[int, int]:
    """(resident now, peak resident) of `pid` in KiB, from /proc."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found.get("VmRSS", 0), found.get("VmHWM", 0)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


class Buurtbeeld:
    """`python -m services.cli up` on `data_dir`, HTTP on a free port."""

    def __init__(self, data_dir: Path, **extra_env: str) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        organisations = data_dir / "bench-organisations.toml"
        organisations.write_text(organisations_toml())
        buurten = data_dir / "bench-buurten.toml"
        buurten.write_text(buurten_toml())
        self.http_port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BUURTBEELD_", "NATS_", "POSTGRES_", "PERSISTENCE_MODULE"))
        }
        env.update(
            BUURTBEELD_DATA=str(data_dir),
            BUURTBEELD_ORGANISATIONS=str(organisations),
            BUURTBEELD_BUURTEN=str(buurten),
            BUURTBEELD_HTTP_PORT=str(self.http_port),
            BUURTBEELD_NATS_PORT=str(free_port()),
            BUURTBEELD_LOG_FORMAT="json",
            BUURTBEELD_LOG_LEVEL="INFO",
            **extra_env,
        )
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.records: list[dict[str, Any]] = []
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def nats_url(self) -> str:
        return (self.data_dir / "nats.url").read_text().strip()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            self._lines.put(record)
        self._lines.put(None)

    def wait_for(self, event: str, within: float = 600) -> dict[str, Any]:
        """The first log record of `event` (also one logged before)."""
        for record in self.records:
            if record.get("event") == event:
                return record
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                record = self._lines.get(timeout=1)
            except queue.Empty:
                continue
            if record is None:
                raise RuntimeError(f"buurtbeeld up exited ({self.process.wait()}) before {event}")
            self.records.append(record)
            if record.get("level") in ("error", "critical"):
                print(f"  buurtbeeld up: {record}", file=sys.stderr)
            if record.get("event") == event:
                return record
        raise TimeoutError(f"no {event} within {within}s")

    def drain_log(self) -> None:
        while True:
            try:
                record = self._lines.get_nowait()
            except queue.Empty:
                return
            if record is None:
                return
            self.records.append(record)

    def view_position(self) -> int | None:
        """The live generation's position in the SQLite views (None before the first commit)."""
        path = self.data_dir / "views.sqlite"
        if not path.exists():
            return None
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
                found = db.execute(
                    "SELECT position FROM picture_generations WHERE state = 'live'"
                ).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if found is None or found[0] is None else int(found[0])

    def stop(self, timeout: float = 60) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.drain_log()

    def __enter__(self) -> Buurtbeeld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
