"""Intake's pipeline on the JetStream event store: every story of
tests/unit/test_ingest_pipeline.py, plus another instance writing meanwhile."""

from __future__ import annotations

import pytest

from services.coordination.application import MAX_SIGNALS_PER_SAVE, Coordination
from services.embedded_nats import EmbeddedNats
from tests.integration.jetstream_support import fresh_store_env
from tests.unit.test_coordination import Clock, at, coordination, kinds
from tests.unit.test_ingest_pipeline import PipelineStories, Saves, batch, many, stored_signal_refs


class TestPipelineOnJetStream(PipelineStories):
    @pytest.fixture
    def env(self, shared_nats: EmbeddedNats) -> dict[str, str]:
        return fresh_store_env(shared_nats.url)

    # Only a store that two instances share (not the in-memory one) has this story.
    def test_a_receipt_stored_meanwhile_makes_that_signal_a_duplicate(
        self, app: Coordination, env: dict[str, str]
    ) -> None:
        signals = batch(many())
        late = signals[MAX_SIGNALS_PER_SAVE + 3]  # in chunk 2

        def other_instance_first(n: int) -> None:
            if n == 2:  # another instance processed one of chunk 2's signals
                other = coordination(env, Clock())
                try:
                    other.receive([late])
                finally:
                    other.close()

        Saves(app, other_instance_first)
        outcomes = app.receive(signals, at("Intake", 30))
        assert kinds(outcomes).count("duplicate") == 1
        assert outcomes[MAX_SIGNALS_PER_SAVE + 3].kind.value == "duplicate"
        refs = stored_signal_refs(app)
        assert set(refs.values()) == {1} and len(refs) == many()
        assert app.recorder.max_tracking_id("Intake") == 30
