"""Helpers for running the library's recorder test cases against our store."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from eventsourcing.utils import Environment

from events.jetstream import JetStreamFactory
from services.embedded_nats import EmbeddedNats


def fresh_store_env(nats_url: str) -> dict[str, str]:
    """Settings for a store on its own stream and subjects (notification ids from 1)."""
    name = uuid4().hex[:10]
    return {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": nats_url,
        "NATS_STREAM": f"T{name}",
        "NATS_SUBJECT_PREFIX": f"t{name}",
        "NATS_TIMEOUT": "10",
    }


class OnJetStream:
    """Mixin for `unittest` cases: `self.factory()` gives a factory on a fresh stream.

    The server is shared by the module (see `shared_nats`); factories are
    closed after each test.
    """

    nats_url: str

    @pytest.fixture(autouse=True)
    def _jetstream(self, shared_nats: EmbeddedNats) -> Iterator[None]:
        self.nats_url = shared_nats.url
        self._factories: list[JetStreamFactory] = []
        yield
        for factory in self._factories:
            factory.close()

    def factory(self) -> JetStreamFactory:
        factory = JetStreamFactory(Environment(env=fresh_store_env(self.nats_url)))
        self._factories.append(factory)
        return factory
