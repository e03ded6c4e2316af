"""The demo scenario fits the demo registries and the contract, so seeding it works."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from events.contract import COMMANDS, codec
from services.demo import ACTIONS, DEMO_BUURT, SIGNALS
from services.registries import DEFAULT_CATEGORIES, load_demo_buurten
from services.registries.organisations import DEMO_ORGANISATIONS

DEMO_ORGANISATION_IDS = {org_id for org_id, *_ in DEMO_ORGANISATIONS}


def test_every_signal_is_valid_in_the_demo_registries() -> None:
    assert DEMO_BUURT in load_demo_buurten()
    now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    for demo in SIGNALS:
        assert demo.organisation in DEMO_ORGANISATION_IDS, demo.organisation
        assert demo.category in DEFAULT_CATEGORIES, demo.category
        # What goes on the wire decodes as partners' signals are decoded.
        assert codec.signal_decoder.decode(codec.encode(demo.signal(now))) == demo.signal(now)
    assert len({demo.ref for demo in SIGNALS}) == len(SIGNALS)


def test_the_scenario_has_repeated_places_and_both_sensitivities() -> None:
    places = [demo.place for demo in SIGNALS]
    assert any(places.count(place) > 1 for place in places)  # several signals, one issue
    sensitivities = {DEFAULT_CATEGORIES.get(d.category).sensitivity for d in SIGNALS}  # type: ignore[union-attr]
    assert {s.value for s in sensitivities} == {"open", "vertrouwelijk"}


def test_every_action_is_a_contract_command_about_a_seeded_signal() -> None:
    refs = {demo.ref for demo in SIGNALS}
    for action in ACTIONS:
        assert action.about in refs
        assert action.organisation in DEMO_ORGANISATION_IDS
        body = msgspec.json.encode({"issueId": f"{DEMO_BUURT}.issue.x", **action.fields})
        assert isinstance(codec.decode_command(action.verb, body), COMMANDS[action.verb])
