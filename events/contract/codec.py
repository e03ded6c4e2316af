"""Encoders and decoders, built once and reused."""

from __future__ import annotations

from typing import Any

import msgspec

from events.contract.commands import (
    COMMANDS,
    Accepted,
    Command,
    ForgetPersonalData,
    Refused,
    Reply,
)
from events.contract.intake import Signal
from events.contract.issue_events import IssueEventType
from events.contract.receipts import SignalReceived

encoder = msgspec.json.Encoder()
signal_decoder = msgspec.json.Decoder(Signal)
issue_event_decoder = msgspec.json.Decoder(IssueEventType)
receipt_decoder = msgspec.json.Decoder(SignalReceived)
command_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    verb: msgspec.json.Decoder(kind) for verb, kind in COMMANDS.items()
}
forget_decoder = msgspec.json.Decoder(ForgetPersonalData)
_accepted = msgspec.json.Decoder(Accepted)
_refused = msgspec.json.Decoder(Refused)
_ok_only = msgspec.json.Decoder(dict[str, Any])


def encode(message: msgspec.Struct) -> bytes:
    return encoder.encode(message)


def decode_command(verb: str, body: bytes) -> Command:
    """The command for `verb`: KeyError for an unknown verb, msgspec errors for a bad body."""
    decoded: Command = command_decoders[verb].decode(body)
    return decoded


def decode_reply(body: bytes) -> Reply:
    ok = _ok_only.decode(body).get("ok")
    reply: Reply = _accepted.decode(body) if ok is True else _refused.decode(body)
    return reply
