"""The `eventsourcing` library's own recorder test cases, against our JetStream store.

Each case runs on a fresh stream of a real nats-server (sync_interval: always).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from uuid import uuid4

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)

# Imported as modules so that pytest does not collect the abstract base cases.
from eventsourcing.tests import application as library_app
from eventsourcing.tests import persistence as library
from eventsourcing.utils import Environment

from events.jetstream import (
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamFactory,
    JetStreamProcessRecorder,
    JetStreamTrackingRecorder,
)
from services.embedded_nats import EmbeddedNats
from tests.integration.jetstream_support import OnJetStream, fresh_store_env


class TestAggregateRecorder(OnJetStream, library.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.factory().aggregate_recorder()


class TestSnapshotRecorder(OnJetStream, library.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.factory().aggregate_recorder("snapshots")


class TestAggregateRecorderWithBuurtIds(TestAggregateRecorder):
    """String ids with dots become subject tokens: events.<buurt>.issue.<id>."""

    def new_originator_id(self) -> str:
        return f"BU0363FF03.issue.{uuid4().hex}"


class TestApplicationRecorder(
    OnJetStream, library.ApplicationRecorderTestCase[ApplicationRecorder]
):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory().application_recorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestApplicationRecorderWithBuurtIds(TestApplicationRecorder):
    def new_originator_id(self) -> str:
        return f"BU0363FF03.issue.{uuid4().hex}"


class TestTrackingRecorder(OnJetStream, library.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.factory().tracking_recorder()


class TestProcessRecorder(OnJetStream, library.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.factory().process_recorder()


class TestNonInterleavingNotificationIDs(
    OnJetStream, library.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory().application_recorder()


class CustomTrackingRecorder(JetStreamTrackingRecorder):
    pass


class TestInfrastructureFactory(library.InfrastructureFactoryTestCase[JetStreamFactory]):
    @pytest.fixture(autouse=True)
    def _environment(self, shared_nats: EmbeddedNats) -> None:
        self.env = Environment("TestCase", fresh_store_env(shared_nats.url))

    def setUp(self) -> None:  # runs after the autouse fixture
        super().setUp()

    def expected_factory_class(self) -> type[JetStreamFactory]:
        return JetStreamFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return JetStreamAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return JetStreamApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return JetStreamTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return JetStreamProcessRecorder


class TestExampleApplication(library_app.ExampleApplicationTestCase):
    """The library's bank-accounts application, persisted in JetStream."""

    expected_factory_topic = "events.jetstream.factory:JetStreamFactory"

    @pytest.fixture(autouse=True)
    def _environment(self, shared_nats: EmbeddedNats) -> Iterator[None]:
        # The example application reads its persistence settings from os.environ.
        saved = dict(os.environ)
        os.environ.update(fresh_store_env(shared_nats.url))
        yield
        os.environ.clear()
        os.environ.update(saved)
