"""The store's hand-encoded protocol commands: exactly what `nc.publish` would send."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import ProgrammingError

from events.jetstream.wire import (
    OutgoingMessage,
    encode_atomic_batch,
    encode_headers,
    encode_hpub,
    encode_pub,
)


def test_a_header_block_is_nats_1_0_then_one_line_each_then_a_blank_line() -> None:
    block = encode_headers({"Es-Topic": "IssueOpened", "Es-Version": "1"}, "Nats-Batch-Id: b\r\n")
    assert block == (
        b"NATS/1.0\r\nEs-Topic: IssueOpened\r\nEs-Version: 1\r\nNats-Batch-Id: b\r\n\r\n"
    )


def test_hpub_counts_the_header_block_and_then_header_plus_payload() -> None:
    command = encode_hpub("events.x", {"A": "1"}, b"{}", reply="_INBOX.r.1")
    header = b"NATS/1.0\r\nA: 1\r\n\r\n"
    assert command == (
        b"HPUB events.x _INBOX.r.1 %d %d\r\n" % (len(header), len(header) + 2)
        + header
        + b"{}\r\n"
    )
    assert encode_hpub("s", {}, b"").startswith(b"HPUB s 12 12\r\n")


def test_utf8_is_counted_in_bytes() -> None:
    command = encode_hpub("s", {"Es-Topic": "é"}, "ë".encode())
    header = "NATS/1.0\r\nEs-Topic: é\r\n\r\n".encode()
    assert command.startswith(b"HPUB s %d %d\r\n" % (len(header), len(header) + 2))


@pytest.mark.parametrize("value", ["a\r\nForged: 1", "a\nb", "a\rb"])
def test_a_line_break_in_a_header_would_forge_one_and_is_refused(value: str) -> None:
    with pytest.raises(ProgrammingError, match="line break"):
        encode_headers({"Es-Topic": value})


def test_pub_without_headers_is_an_ack() -> None:
    assert encode_pub("$JS.ACK.INTAKE.c.1.2.2.0.0") == b"PUB $JS.ACK.INTAKE.c.1.2.2.0.0 0\r\n\r\n"
    assert encode_pub("s", b"+NAK") == b"PUB s 4\r\n+NAK\r\n"


def test_an_atomic_batch_numbers_its_messages_expects_heads_and_commits_with_the_last() -> None:
    messages = [
        OutgoingMessage("events.a", {"Es-Topic": "T", "Es-Version": "1"}, b"{}", ""),
        OutgoingMessage("events.a", {}, b"[]", "Es-Topic: T\r\nEs-Version: 2\r\n"),
        OutgoingMessage("events-tracking.I", {}, b"7"),
    ]
    parts = encode_atomic_batch(messages, {0: 41}, "_INBOX.r.5")
    commands = b"".join(parts).split(b"HPUB ")[1:]
    assert len(commands) == 3
    first, second, last = (c.decode() for c in commands)
    batch_id = first.split("Nats-Batch-Id: ")[1].split("\r\n")[0]
    assert len(batch_id) == 32
    assert first == (
        "events.a 154 156\r\nNATS/1.0\r\nEs-Topic: T\r\nEs-Version: 1\r\n"
        "Nats-Expected-Last-Subject-Sequence: 41\r\n"
        f"Nats-Batch-Id: {batch_id}\r\nNats-Batch-Sequence: 1\r\n\r\n{{}}\r\n"
    )
    assert second.startswith("events.a ") and "Expected" not in second
    assert "Es-Version: 2\r\n" in second and "Nats-Batch-Sequence: 2\r\n" in second
    assert last.startswith("events-tracking.I _INBOX.r.5 ")
    assert last.endswith("Nats-Batch-Sequence: 3\r\nNats-Batch-Commit: 1\r\n\r\n7\r\n")
    for command in (first, second, last):
        control, rest = command.split("\r\n", 1)
        header_size, total_size = map(int, control.split()[-2:])
        assert rest.index("\r\n\r\n") + 4 == header_size
        assert len(rest) == total_size + 2


def test_one_message_is_a_plain_publish_not_a_batch() -> None:
    [command, *_] = encode_atomic_batch([OutgoingMessage("s", {"A": "1"}, b"x")], {}, "r")
    assert command.startswith(b"HPUB s r ")
    alone = encode_atomic_batch([OutgoingMessage("s", {}, b"")], {}, "r")
    assert b"Nats-Batch" not in b"".join(alone)
