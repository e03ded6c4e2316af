"""Issue events are stored as the public contract JSON, and read back whole."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from events.contract import ISSUE_EVENT_TYPES, HandoverOffered, codec
from events.mapping import ContractTypes
from services.coordination.issue import Issue, Status
from services.coordination.mapper import ISSUE_CONTRACT, issue_event_classes, issue_mapper
from services.coordination.receipt import Receipt
from tests.unit.test_issue import T0, opened, signal


def test_every_contract_event_has_exactly_one_domain_event_with_its_fields() -> None:
    domain = issue_event_classes()
    assert sorted(domain) == sorted(t.__name__ for t in ISSUE_EVENT_TYPES)
    for struct in ISSUE_EVENT_TYPES:
        wanted = set(struct.__struct_fields__) - {"issue_id"}
        assert wanted <= set(domain[struct.__name__].__dataclass_fields__), struct.__name__


def a_full_life() -> list[Issue.Event]:
    issue = opened()
    issue.attach_signal(signal("bp-1", "bewonersportaal"), at=T0 + timedelta(hours=1))
    issue.escalate("buurtbeeld", due_at=T0 + timedelta(days=2), at=T0 + timedelta(days=2))
    issue.claim("woonzorg", at=T0 + timedelta(days=2, hours=1), actor="J. de Vries")
    issue.offer_handover("woonzorg", to="stadgenoot", at=T0 + timedelta(days=3))
    issue.decline_handover("stadgenoot", at=T0 + timedelta(days=3))
    issue.offer_handover("woonzorg", to="wijkteam-nieuw-west", at=T0 + timedelta(days=3))
    issue.accept_handover("wijkteam-nieuw-west", at=T0 + timedelta(days=4))
    issue.absorb(
        "wijkteam-nieuw-west",
        merged="BU0363FF03.issue.old",
        signal_count=2,
        reporters=["stadgenoot"],
        at=T0 + timedelta(days=4),
    )
    issue.release("wijkteam-nieuw-west", at=T0 + timedelta(days=5))
    issue.claim("gemeente-amsterdam", at=T0 + timedelta(days=5))
    issue.resolve("gemeente-amsterdam", resolution="opgeruimd", at=T0 + timedelta(days=6))
    issue.reopen("bewonersportaal", reason="ligt er weer", at=T0 + timedelta(days=7))
    issue.merge_into("bewonersportaal", into="BU0363FF03.issue.other", at=T0 + timedelta(days=8))
    return issue.collect_events()  # type: ignore[return-value]


def test_the_stored_state_is_the_contract_json_and_reads_back_the_same() -> None:
    mapper = issue_mapper()
    events = a_full_life()
    assert {type(e).__name__ for e in events} == {t.__name__ for t in ISSUE_EVENT_TYPES}
    rebuilt = None
    for event in events:
        stored = mapper.to_stored_event(event)

        # The topic is the contract type; the body is what a partner decodes.
        assert stored.topic == type(event).__name__
        body = json.loads(stored.state)
        assert body["type"] == stored.topic
        assert body["issueId"] == event.originator_id
        assert body["buurt"] == "BU0363FF03" and body["category"] == "grof-vuil"
        assert type(codec.issue_event_decoder.decode(stored.state)).__name__ == stored.topic

        # Reading it back gives the domain event, and replaying them the issue.
        back = mapper.to_domain_event(stored)
        assert type(back) is type(event)
        assert vars(back) == vars(event)
        rebuilt = back.mutate(rebuilt)
    assert isinstance(rebuilt, Issue)
    assert rebuilt.status is Status.MERGED
    assert rebuilt.signal_count == 4


class HandoverOfferedV2(HandoverOffered, frozen=True, kw_only=True, tag="HandoverOffered"):
    """An imagined schema change: the offer now says until when it stands."""

    until: datetime | None = None


def test_an_event_stored_in_an_older_shape_is_upcast_when_read() -> None:
    # A v1 `HandoverOffered` was stored, with `to` written as `toOrganisation` (say).
    v1: dict[str, Any] = {
        "type": "HandoverOffered",
        "issueId": "BU0363FF03.issue.1",
        "buurt": "BU0363FF03",
        "category": "grof-vuil",
        "at": "2026-11-20T09:30:00+00:00",
        "organisation": "woonzorg",
        "toOrganisation": "stadgenoot",
    }

    def v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
        body = dict(body)
        body["to"] = body.pop("toOrganisation")
        body["until"] = None
        return body

    v2_contract = ContractTypes(
        structs={**ISSUE_CONTRACT.structs, "HandoverOffered": HandoverOfferedV2},
        id_field="issue_id",
        versions={"HandoverOffered": 2},
        upcasters={("HandoverOffered", 1): v1_to_v2},
    )
    mapper = issue_mapper(contract=v2_contract)
    from eventsourcing.persistence import StoredEvent

    stored = StoredEvent("BU0363FF03.issue.1", 4, "HandoverOffered", json.dumps(v1).encode())
    event = mapper.to_domain_event(stored)
    assert isinstance(event, Issue.HandoverOffered)
    assert event.to == "stadgenoot"
    assert event.at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

    # New writes carry the new version in the topic.
    again = mapper.to_stored_event(event)
    assert again.topic == "HandoverOffered@2"
    assert mapper.to_domain_event(again).to == "stadgenoot"  # type: ignore[attr-defined]


def test_a_receipt_is_stored_as_its_contract_json_outside_every_buurt() -> None:
    mapper = issue_mapper()
    receipt = Receipt.record("woonzorg", "wz-2026-000123", "BU0363FF03.issue.1", at=T0)
    [event] = receipt.collect_events()
    stored = mapper.to_stored_event(event)

    # Its id is made of subject tokens, under receipts.<org>, not under any buurt.
    assert stored.originator_id == Receipt.create_id("woonzorg", "wz-2026-000123")
    assert str(stored.originator_id).startswith("receipts.woonzorg.")
    assert len(str(stored.originator_id).split(".")[-1]) == 40

    # The body is the contract's SignalReceived, and it reads back as the receipt.
    assert stored.topic == "SignalReceived"
    body = codec.receipt_decoder.decode(stored.state)
    assert (body.receipt_id, body.signal_ref, body.issue_id) == (
        stored.originator_id,
        "wz-2026-000123",
        "BU0363FF03.issue.1",
    )
    back = mapper.to_domain_event(stored)
    assert vars(back) == vars(event)
    rebuilt = back.mutate(None)
    assert isinstance(rebuilt, Receipt) and rebuilt.issue_id == "BU0363FF03.issue.1"
