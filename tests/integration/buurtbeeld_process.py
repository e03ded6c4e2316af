"""A real `buurtbeeld up` process for tests, its JSON log read as it comes."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.embedded_nats import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
# Generous: a loaded 2-core CI machine can take its time to start Python and nats-server.
READY_WITHIN = 120.0
EXIT_WITHIN = 60.0
CONFIGURATION_PREFIXES = ("BUURTBEELD_", "NATS_", "POSTGRES_", "PERSISTENCE_MODULE")


class BuurtbeeldUp:
    """One `buurtbeeld up` process; its JSON log lines are read as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.records: list[dict[str, Any]] = []
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def _take(self, line: str) -> dict[str, Any]:
        self.output.append(line)
        try:
            record = json.loads(line)
        except ValueError:
            return {}
        self.records.append(record)
        return record if isinstance(record, dict) else {}

    def wait_for(self, event: str, within: float = READY_WITHIN) -> dict[str, Any]:
        """The first log record named `event`, waiting at most `within` seconds for it."""
        for record in self.records:
            if record.get("event") == event:
                return record
        deadline = time.monotonic() + within
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(
                    f"buurtbeeld up exited ({self.process.wait()}) before {event}:\n"
                    + "".join(self.output)
                )
            record = self._take(line)
            if record.get("event") == event:
                return record
        raise AssertionError(f"no {event} within {within}s:\n" + "".join(self.output))

    def events(self) -> list[str]:
        return [str(r.get("event")) for r in self.records]

    def stop(self, signum: signal.Signals) -> int:
        """Send `signum`, wait for the exit, and read the rest of the log; the exit code."""
        self.process.send_signal(signum)
        return self.wait()

    def wait(self) -> int:
        code = self.process.wait(timeout=EXIT_WITHIN)
        self._reader.join(timeout=EXIT_WITHIN)
        while not self._lines.empty():
            line = self._lines.get_nowait()
            if line is not None:
                self._take(line)
        return code

    def embedded_nats_pid(self) -> int | None:
        started = [r for r in self.records if r.get("event") == "nats.embedded.started"]
        return int(started[0]["pid"]) if started else None

    def clean_up(self) -> None:
        """Leave nothing running, whatever the test did."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=EXIT_WITHIN)
        pid = self.embedded_nats_pid()
        if pid is not None and process_exists(pid):
            os.kill(pid, signal.SIGKILL)
        self._reader.join(timeout=EXIT_WITHIN)
        assert self.process.stderr is not None
        self.process.stderr.close()


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def something_listens_on(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    """The environment for `buurtbeeld up`: a data folder in tmp_path, free NATS and HTTP ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIGURATION_PREFIXES)}
    env.update(
        BUURTBEELD_DATA=str(tmp_path / "data"),
        BUURTBEELD_NATS_PORT=str(free_port()),
        BUURTBEELD_HTTP_PORT=str(free_port()),
        BUURTBEELD_LOG_FORMAT="json",
        BUURTBEELD_INTAKE_MAX_AGE="12h",
    )
    return env


@pytest.fixture
def start_up() -> Iterator[Callable[[dict[str, str]], BuurtbeeldUp]]:
    """Starts `buurtbeeld up` processes, and cleans up after them."""
    started: list[BuurtbeeldUp] = []

    def start(env: dict[str, str]) -> BuurtbeeldUp:
        started.append(BuurtbeeldUp(env))
        return started[-1]

    yield start
    for up in started:
        up.clean_up()
