"""The AsyncAPI document of the NATS interface: generated from the FastStream declarations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.contract import schemas
from services.cli import main
from services.coordination import asyncapi


def test_the_checked_in_document_is_what_the_code_generates() -> None:
    # If this fails: buurtbeeld asyncapi --write, and check in docs/asyncapi.json.
    assert asyncapi.DOCUMENT_PATH.read_text() == asyncapi.render()


def test_it_documents_the_partner_subjects_with_the_contract_schemas() -> None:
    document = asyncapi.document()
    channels = {name: channel["address"] for name, channel in document["channels"].items()}
    assert channels == {
        "intake": "intake.{org}.signals",
        "rejected": "rejected.{org}",
        "commands": "cmd.{org}.{verb}",
        "commandsReply": None,
        "queries": "query.{org}.{question}",
        "queriesReply": None,
    }
    operations = document["operations"]
    assert operations["intake"]["action"] == operations["commands"]["action"] == "receive"
    assert operations["rejected"]["action"] == "send"
    assert len(operations["commands"]["reply"]["messages"]) == 2
    assert operations["queries"]["action"] == "receive"
    assert len(operations["queries"]["reply"]["messages"]) == 4

    # The payloads are the contract's JSON Schemas (references written out in place).
    components = document["components"]["schemas"]
    checked_in = {name: json.loads(text) for name, text in schemas.render().items()}
    rejection = checked_in["rejected.schema.json"]["$defs"]["Rejection"]
    assert components["Rejection"]["properties"] == rejection["properties"]
    signal = components["Signal"]
    assert signal["required"] == ["signalRef", "buurt", "category", "summary", "observedAt"]
    assert "$ref" not in json.dumps(signal)
    verbs = [command["title"] for command in components["Command"]["oneOf"]]
    assert verbs == [
        "claim",
        "release",
        "handover",
        "accept-handover",
        "decline-handover",
        "resolve",
        "reopen",
        "merge",
    ]
    assert set(components["Refused"]["properties"]["code"]["enum"]) == {
        "already-owned",
        "not-owner",
        "not-found",
        "invalid",
        "conflict",
        "forbidden",
    }


def test_buurtbeeld_asyncapi_prints_the_document_and_writes_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["asyncapi"]) == 0
    assert capsys.readouterr().out == asyncapi.render()
    target = tmp_path / "asyncapi.json"
    assert main(["asyncapi", "--write", str(target)]) == 0
    assert target.read_text() == asyncapi.render()
