"""The infrastructure factory selected by `PERSISTENCE_MODULE=events.jetstream`.

Settings, read through the library's `Environment` (so `<APP>_NATS_URL` wins
over `NATS_URL`, as with the library's own modules):

| variable | meaning | default |
|---|---|---|
| `NATS_URL` | server URL(s), comma separated | required |
| `NATS_STREAM` | the events stream | `EVENTS` |
| `NATS_SUBJECT_PREFIX` | events at `<prefix>.<id>` | `events` |
| `NATS_REPLICAS` | stream replicas (1 embedded, 3 in a cluster) | `1` |
| `NATS_TIMEOUT` | seconds any call may wait for the server | `5` |
| `NATS_CONNECT_TIMEOUT` | seconds to wait for a connection | `NATS_TIMEOUT` |
| `NATS_CREDENTIALS` | path of a `.creds` file | none |
| `CREATE_TABLE` | create missing streams | `y` |
"""

from __future__ import annotations

from threading import Lock

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    InfrastructureFactoryError,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool

from events.jetstream.client import JetStreamClient
from events.jetstream.personal_keys import JetStreamKeyStore
from events.jetstream.recorders import (
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamProcessRecorder,
    JetStreamTrackingRecorder,
)
from events.jetstream.streams import StreamSpec, ensure_stream
from events.jetstream.subjects import SubjectScheme


class JetStreamFactory(InfrastructureFactory[JetStreamTrackingRecorder]):
    """Constructs JetStream recorders sharing one connection; `close()` closes it."""

    NATS_URL = "NATS_URL"
    NATS_STREAM = "NATS_STREAM"
    NATS_SUBJECT_PREFIX = "NATS_SUBJECT_PREFIX"
    NATS_REPLICAS = "NATS_REPLICAS"
    NATS_TIMEOUT = "NATS_TIMEOUT"
    NATS_CONNECT_TIMEOUT = "NATS_CONNECT_TIMEOUT"
    NATS_CREDENTIALS = "NATS_CREDENTIALS"
    CREATE_TABLE = "CREATE_TABLE"

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        url = self.env.get(self.NATS_URL)
        if not url:
            raise InfrastructureFactoryError(
                "events.jetstream needs NATS_URL (for example nats://127.0.0.1:4222)"
            )
        self.servers = [u.strip() for u in url.split(",") if u.strip()]
        self.stream_name = self.env.get(self.NATS_STREAM, "EVENTS")
        self.scheme = SubjectScheme(self.env.get(self.NATS_SUBJECT_PREFIX, "events"))
        self.snapshot_scheme = SubjectScheme(f"{self.scheme.prefix}-snapshots")
        self.replicas = self._number(self.NATS_REPLICAS, "1", int)
        self.timeout = self._number(self.NATS_TIMEOUT, "5", float)
        self.connect_timeout = self._number(self.NATS_CONNECT_TIMEOUT, str(self.timeout), float)
        self.credentials = self.env.get(self.NATS_CREDENTIALS) or None
        self._client: JetStreamClient | None = None
        self._lock = Lock()
        self._ensured: set[str] = set()

    def _number(self, key: str, default: str, kind: type[int] | type[float]) -> float:
        raw = self.env.get(key, default)
        try:
            value = kind(raw)
        except ValueError:
            raise InfrastructureFactoryError(f"{key} must be a number, not {raw!r}") from None
        if value <= 0:
            raise InfrastructureFactoryError(f"{key} must be positive, not {raw!r}")
        return value

    @property
    def events_stream(self) -> StreamSpec:
        return StreamSpec(
            name=self.stream_name,
            subjects=tuple(self.scheme.stream_subjects),
            replicas=int(self.replicas),
            immutable=True,
            description="Buurtbeeld: the event log (system of record)",
        )

    @property
    def snapshots_stream(self) -> StreamSpec:
        return StreamSpec(
            name=f"{self.stream_name}_SNAPSHOTS",
            subjects=(self.snapshot_scheme.events_filter,),
            replicas=int(self.replicas),
            immutable=False,
            description="Buurtbeeld: aggregate snapshots (a cache, rebuildable from events)",
        )

    @property
    def client(self) -> JetStreamClient:
        """The connection, made on first use."""
        with self._lock:
            if self._client is None:
                self._client = JetStreamClient(
                    self.servers,
                    timeout=self.timeout,
                    connect_timeout=self.connect_timeout,
                    credentials=self.credentials,
                )
            return self._client

    def ensure_stream(self, spec: StreamSpec) -> None:
        """Create `spec` if missing and allowed (CREATE_TABLE), else check it exists and fits."""
        create = strtobool(self.env.get(self.CREATE_TABLE, "yes"))
        if create and spec.name in self._ensured:
            return
        client = self.client
        client.run(ensure_stream(client.nc, spec, create=create, timeout=self.timeout))
        self._ensured.add(spec.name)

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose == "snapshots":
            self.ensure_stream(self.snapshots_stream)
            return JetStreamAggregateRecorder(
                self.client, self.snapshots_stream.name, self.snapshot_scheme
            )
        self.ensure_stream(self.events_stream)
        return JetStreamAggregateRecorder(self.client, self.stream_name, self.scheme)

    def application_recorder(self) -> ApplicationRecorder:
        self.ensure_stream(self.events_stream)
        return JetStreamApplicationRecorder(self.client, self.stream_name, self.scheme)

    def tracking_recorder(
        self, tracking_recorder_class: type[JetStreamTrackingRecorder] | None = None
    ) -> JetStreamTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else JetStreamTrackingRecorder
        assert tracking_recorder_class is not None
        self.ensure_stream(self.events_stream)
        return tracking_recorder_class(self.client, self.stream_name, self.scheme)

    def personal_data_keys(self) -> JetStreamKeyStore:
        """Where the keys of the personal data in the log are kept (`events.personal_data`)."""
        return JetStreamKeyStore(self.client, replicas=int(self.replicas))

    def process_recorder(self) -> ProcessRecorder:
        self.ensure_stream(self.events_stream)
        return JetStreamProcessRecorder(self.client, self.stream_name, self.scheme)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
