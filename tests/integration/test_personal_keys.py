"""The data subjects' keys in their NATS KV bucket, on a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import nats
import pytest
from nats.js.errors import NotFoundError

from events.jetstream.client import JetStreamClient
from events.jetstream.personal_keys import BUCKET, JetStreamKeyStore
from events.personal_data import PersonalDataVault
from services.embedded_nats import EmbeddedNats
from tests.unit.test_personal_data import signal


@pytest.fixture
def client(nats_server: EmbeddedNats) -> Iterator[JetStreamClient]:
    client = JetStreamClient([nats_server.url])
    try:
        yield client
    finally:
        client.close()


def test_keys_are_made_once_read_back_and_deleted_with_every_earlier_value(
    client: JetStreamClient, nats_server: EmbeddedNats
) -> None:
    keys = JetStreamKeyStore(client)
    assert keys.get("abc") is None  # the bucket is made on first use
    assert keys.create("abc", b"first") == b"first"
    # Made meanwhile elsewhere (another instance): that one it is.
    assert JetStreamKeyStore(client).create("abc", b"second") == b"first"
    assert keys.get("abc") == b"first"

    assert keys.delete("abc")
    assert keys.get("abc") is None
    assert not keys.delete("abc")
    assert keys.create("abc", b"third") == b"third"  # a new one, once forgotten
    assert keys.delete("abc")

    async def stored() -> list[bytes]:
        """Every message the bucket's stream still holds for the key."""
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(f"KV_{BUCKET}")
            assert info.config.max_msgs_per_subject == 1 and not info.config.deny_purge
            found = []
            for sequence in range(1, (info.state.last_seq or 0) + 1):
                try:
                    msg = await js.get_msg(f"KV_{BUCKET}", sequence)
                except NotFoundError:
                    continue
                if msg.subject == f"$KV.{BUCKET}.abc":
                    found.append(msg.data or b"")
            return found
        finally:
            await nc.close()

    # Only the purge marker is left: no value the key ever had.
    assert asyncio.run(stored()) == [b""]


def test_a_vault_on_the_bucket_forgets_for_every_process(client: JetStreamClient) -> None:
    vault = PersonalDataVault(JetStreamKeyStore(client))
    parts = vault.seal("woonzorg", signal("wz-1", reporter=None))
    assert parts is not None
    [sealed] = parts
    elsewhere = PersonalDataVault(JetStreamKeyStore(client))  # another process, say
    assert elsewhere.unseal(sealed) is not None  # the same secret, the same key
    assert elsewhere.forget("woonzorg", subject_ref="hh-8f3a21")
    # At once unreadable for the vault that sealed it too (it asks the bucket).
    assert vault.unseal(sealed) is None and elsewhere.unseal(sealed) is None
    assert vault.forget("woonzorg", subject_ref="hh-8f3a21") is False
