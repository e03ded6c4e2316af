"""Shared fixtures: a real nats-server on a free port, real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from services.embedded_nats import EmbeddedNats

# `pytest --hypothesis-profile=stress` searches far more examples than a normal run; CI
# (CI=true) uses Hypothesis's own derandomized "ci" profile.
settings.register_profile("stress", max_examples=3000, deadline=None)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A fresh nats-server (JetStream, `sync_interval: always`) for one test."""
    with EmbeddedNats(data_dir=tmp_path / "nats") as server:
        yield server


@pytest.fixture(scope="module")
def shared_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """One nats-server for a whole test module; tests keep apart by stream name."""
    with EmbeddedNats(data_dir=tmp_path_factory.mktemp("nats")) as server:
        yield server
