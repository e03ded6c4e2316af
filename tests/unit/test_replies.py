"""Refusals as partners get them back: one mapping, every code of the contract."""

from __future__ import annotations

import json
from typing import get_args

from events.contract import Refused
from events.contract.codec import encode
from events.contract.commands import RefusalCode
from services.coordination.refusals import (
    AlreadyOwned,
    Conflict,
    Forbidden,
    InvalidCommand,
    NotFound,
    NotOwner,
    Refusal,
)
from services.coordination.replies import MAX_MESSAGE_LENGTH, refused


def test_a_refusal_becomes_the_contract_reply_with_its_code_and_message() -> None:
    reply = refused(NotOwner("BU0363FF03.issue.1 is owned by stadgenoot"))

    assert json.loads(encode(reply)) == {
        "ok": False,
        "code": "not-owner",
        "message": "BU0363FF03.issue.1 is owned by stadgenoot",
    }


def test_every_refusal_has_a_code_of_the_contract_and_every_code_a_refusal() -> None:
    refusals = [AlreadyOwned, NotOwner, NotFound, InvalidCommand, Conflict, Forbidden]

    assert {kind.code for kind in refusals} == set(get_args(RefusalCode))
    assert all(issubclass(kind, Refusal) for kind in refusals)
    assert [refused(kind("no")).code for kind in refusals] == [k.code for k in refusals]


def test_a_long_message_is_cut_short() -> None:
    reply = refused(InvalidCommand("x" * 10_000))

    assert isinstance(reply, Refused)
    assert len(reply.message) == MAX_MESSAGE_LENGTH
