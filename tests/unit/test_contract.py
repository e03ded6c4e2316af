"""The public contract on the wire: exactly what CONTRACT.md shows partners."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from events.contract import (
    Accepted,
    Handover,
    IssueOpened,
    OwnershipClaimed,
    Refused,
    Rejection,
    Signal,
    SignalRecord,
    codec,
    schemas,
)

# The example body from CONTRACT.md, as a partner sends it (plus a field we don't know).
CONTRACT_EXAMPLE = b"""{
  "signalRef": "wz-2026-000123",
  "buurt": "BU0363FF03",
  "category": "grof-vuil",
  "summary": "Grof vuil naast de containers bij de parkeerplaats",
  "observedAt": "2026-11-20T09:30:00+01:00",
  "location": {"key": "louweshoek-parkeerplaats", "address": "Louweshoek 1",
               "lat": 52.357, "lon": 4.801},
  "reporter": {"role": "huismeester", "name": "J. de Vries", "phone": "0612345678"},
  "subjectRef": "hh-8f3a21",
  "somethingNew": true
}"""


def test_the_contract_example_decodes_and_unknown_fields_are_ignored() -> None:
    signal = codec.signal_decoder.decode(CONTRACT_EXAMPLE)
    assert signal.signal_ref == "wz-2026-000123"
    assert signal.location is not None and signal.location.key == "louweshoek-parkeerplaats"
    assert signal.reporter is not None and signal.reporter.name == "J. de Vries"
    assert signal.observed_at.utcoffset() is not None


def test_only_the_required_fields_are_required() -> None:
    minimal = b"""{"signalRef": "x", "buurt": "BU0363FF03", "category": "onderhoud",
                   "summary": "Lamp kapot", "observedAt": "2026-11-20T09:30:00Z"}"""
    signal = codec.signal_decoder.decode(minimal)
    assert signal.location is None and signal.reporter is None and signal.subject_ref is None


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"signalRef": ""}, "signalRef"),
        ({"signalRef": "x" * 65}, "signalRef"),
        ({"buurt": "0363FF03"}, "buurt"),
        ({"summary": "x" * 501}, "summary"),
        ({"observedAt": "2026-11-20T09:30:00"}, "observedAt"),  # no offset
        ({"observedAt": "gisteren"}, "observedAt"),
        ({"category": 7}, "category"),
        ({"location": {"lat": 123.0}}, "lat"),
    ],
)
def test_malformed_fields_are_refused_naming_the_field(
    change: dict[str, object], complaint: str
) -> None:
    body = json.loads(CONTRACT_EXAMPLE) | change
    with pytest.raises(msgspec.ValidationError, match=complaint):
        codec.signal_decoder.decode(json.dumps(body).encode())


def test_a_missing_required_field_is_named() -> None:
    body = json.loads(CONTRACT_EXAMPLE)
    del body["observedAt"]
    with pytest.raises(msgspec.ValidationError, match="observedAt"):
        codec.signal_decoder.decode(json.dumps(body).encode())


def test_issue_events_are_tagged_camel_case_json() -> None:
    at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    common = {"issue_id": "BU0363FF03.issue.1", "buurt": "BU0363FF03", "category": "grof-vuil"}
    opened = IssueOpened(
        **common,
        at=at,
        organisation="woonzorg",
        sensitivity="open",
        signal=SignalRecord(
            signal_ref="wz-1", organisation="woonzorg", summary="Grof vuil", observed_at=at
        ),
    )
    body = json.loads(codec.encode(opened))
    assert body["type"] == "IssueOpened"
    assert body["issueId"] == "BU0363FF03.issue.1"
    assert body["signal"]["signalRef"] == "wz-1"
    assert "actor" not in body  # defaults are left out

    # A partner's decoder gets the same event back, whatever its type.
    claimed = OwnershipClaimed(**common, at=at, organisation="wijkteam-nieuw-west")
    for event in (opened, claimed):
        assert codec.issue_event_decoder.decode(codec.encode(event)) == event


def test_commands_and_replies_read_as_the_contract_says() -> None:
    handover = codec.decode_command(
        "handover", b'{"issueId": "BU0363FF03.issue.1", "to": "stadgenoot"}'
    )
    assert handover == Handover(issue_id="BU0363FF03.issue.1", to="stadgenoot")
    with pytest.raises(msgspec.ValidationError, match="to"):
        codec.decode_command("handover", b'{"issueId": "BU0363FF03.issue.1"}')
    with pytest.raises(KeyError):
        codec.decode_command("delete", b"{}")

    accepted = Accepted(issue_id="BU0363FF03.issue.1", version=7)
    assert json.loads(codec.encode(accepted)) == {
        "ok": True,
        "issueId": "BU0363FF03.issue.1",
        "version": 7,
    }
    refused = Refused(code="not-owner", message="stadgenoot does not own this issue")
    assert json.loads(codec.encode(refused))["code"] == "not-owner"
    assert codec.decode_reply(codec.encode(accepted)) == accepted
    assert codec.decode_reply(codec.encode(refused)) == refused


def test_a_rejection_keeps_a_null_signal_ref() -> None:
    assert json.loads(codec.encode(Rejection(signal_ref=None, reasons=["invalid JSON"]))) == {
        "signalRef": None,
        "reasons": ["invalid JSON"],
    }


def test_the_checked_in_json_schemas_match_the_code() -> None:
    rendered = schemas.render()
    on_disk = {p.name: p.read_text() for p in schemas.SCHEMA_DIR.glob("*.schema.json")}
    assert sorted(on_disk) == sorted(rendered), "run: python -m events.contract.schemas"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} is stale: run python -m events.contract.schemas"


def test_the_signal_schema_states_the_contract_rules() -> None:
    schema = json.loads((schemas.SCHEMA_DIR / "intake.signal.schema.json").read_text())
    signal = schema["$defs"]["Signal"]
    assert set(signal["required"]) == {"signalRef", "buurt", "category", "summary", "observedAt"}
    assert signal["properties"]["summary"]["maxLength"] == 500
    assert Signal.__struct_config__.forbid_unknown_fields is False
