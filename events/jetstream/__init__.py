"""The event store on NATS JetStream: an `eventsourcing` persistence module.

Select it with `PERSISTENCE_MODULE=events.jetstream` and `NATS_URL`; see
`events.jetstream.factory` for every setting.
"""

from __future__ import annotations

from collections.abc import Mapping

from eventsourcing.utils import Environment

from events.jetstream.client import JetStreamClient, UnsupportedServerError
from events.jetstream.factory import JetStreamFactory
from events.jetstream.recorders import (
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamProcessRecorder,
    JetStreamTrackingRecorder,
)
from events.jetstream.subjects import InvalidSubjectError, SubjectScheme
from events.jetstream.subscription import JetStreamSubscription


def ensure_streams(env: Mapping[str, str]) -> None:
    """Create the event store's streams if they are missing (used at start-up)."""
    factory = JetStreamFactory(Environment(env=dict(env)))
    try:
        factory.ensure_stream(factory.events_stream)
        factory.ensure_stream(factory.snapshots_stream)
    finally:
        factory.close()


Factory = JetStreamFactory

__all__ = [
    "Factory",
    "InvalidSubjectError",
    "JetStreamAggregateRecorder",
    "JetStreamApplicationRecorder",
    "JetStreamClient",
    "JetStreamFactory",
    "JetStreamProcessRecorder",
    "JetStreamSubscription",
    "JetStreamTrackingRecorder",
    "SubjectScheme",
    "UnsupportedServerError",
    "ensure_streams",
]
