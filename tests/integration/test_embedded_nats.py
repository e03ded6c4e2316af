"""The embedded nats-server launcher, as `buurtbeeld up` and the fixtures use it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.embedded_nats import EmbeddedNats, EmbeddedNatsError


def test_a_taken_port_is_an_error_not_someone_elses_server(tmp_path: Path) -> None:
    # Something else listens on the port ...
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]
        # ... so our server cannot start there, and says so.
        with pytest.raises(EmbeddedNatsError, match="exited"):
            EmbeddedNats(data_dir=tmp_path, port=port, startup_timeout=10).start()


def test_a_restart_on_the_same_folder_waits_for_the_new_process(tmp_path: Path) -> None:
    server = EmbeddedNats(data_dir=tmp_path).start()
    port = server.port
    server.stop()
    # The log already holds the first start's "ready" line; the restart must not be fooled.
    again = EmbeddedNats(data_dir=tmp_path, port=port).start()
    try:
        assert again.process is not None and again.process.poll() is None
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        again.stop()
