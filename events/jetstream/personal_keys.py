"""The data subjects' keys (`events.personal_data`) in a NATS KV bucket beside the event log.

Unlike the EVENTS stream, this bucket forgets: `delete` purges a key with every
earlier value of it (history 1, file storage, the event store's replicas). Sync,
on the event store's connection and loop thread (`JetStreamClient.run`), as
the coordination calls it from its worker threads.
"""

from __future__ import annotations

from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from events.jetstream.client import JetStreamClient

BUCKET = "PERSONAL_DATA_KEYS"


class JetStreamKeyStore:
    """A `events.personal_data.KeyStore` on the KV bucket `bucket` (made on first use)."""

    def __init__(self, client: JetStreamClient, bucket: str = BUCKET, replicas: int = 1) -> None:
        self.client = client
        self.bucket = bucket
        self.replicas = replicas
        self._kv: KeyValue | None = None

    async def _store(self) -> KeyValue:
        if self._kv is None:
            js = self.client.nc.jetstream(timeout=self.client.timeout)
            try:
                self._kv = await js.key_value(self.bucket)
            except BucketNotFoundError:
                self._kv = await js.create_key_value(
                    KeyValueConfig(
                        bucket=self.bucket,
                        description="Buurtbeeld: keys of personal data in the event log",
                        history=1,
                        storage=StorageType.FILE,
                        replicas=self.replicas,
                    )
                )
        return self._kv

    def get(self, name: str) -> bytes | None:
        return self.client.run(self._get(name))

    async def _get(self, name: str) -> bytes | None:
        try:
            entry = await (await self._store()).get(name)
        except KeyNotFoundError:  # never made, or deleted (a `KeyDeletedError`)
            return None
        return entry.value or None

    def create(self, name: str, value: bytes) -> bytes:
        return self.client.run(self._create(name, value))

    async def _create(self, name: str, value: bytes) -> bytes:
        store = await self._store()
        try:
            await store.create(name, value)
        except KeyWrongLastSequenceError:  # made meanwhile, elsewhere: that one it is
            made = await self._get(name)
            if made is None:
                raise
            return made
        return value

    def delete(self, name: str) -> bool:
        return self.client.run(self._delete(name))

    async def _delete(self, name: str) -> bool:
        existed = await self._get(name) is not None
        await (await self._store()).purge(name)
        return existed
