"""The dashboard's Dutch: ages, moments, timeline sentences and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.dashboard.actions import VERB_FIELDS
from services.dashboard.wording import (
    DONE,
    REFUSALS,
    age_between,
    age_text,
    local_moment,
    moment_text,
    refusal_text,
    status_label,
    timeline_detail,
    timeline_text,
)

MINUTE, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (-5, "zojuist"),  # a clock a little ahead is not "in the future"
        (0, "zojuist"),
        (59, "zojuist"),
        (60, "1 minuut"),
        (119, "1 minuut"),
        (5 * MINUTE, "5 minuten"),
        (HOUR, "1 uur"),
        (23 * HOUR + 59 * MINUTE, "23 uur"),
        (DAY, "1 dag"),
        (3 * DAY + 5 * HOUR, "3 dagen"),
        (13 * DAY, "13 dagen"),
        (14 * DAY, "2 weken"),
        (60 * DAY, "8 weken"),
        (61 * DAY, "2 maanden"),
        (364 * DAY, "12 maanden"),
        (365 * DAY, "1 jaar"),
        (800 * DAY, "2 jaar"),
    ],
)
def test_ages_read_as_words(seconds: int, said: str) -> None:
    assert age_text(seconds) == said


def test_age_between_two_moments() -> None:
    opened = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    assert age_between(opened, opened + timedelta(days=3, hours=2)) == "3 dagen"


def test_moments_are_shown_in_dutch_time() -> None:
    # Winter: Amsterdam is UTC+1; summer: UTC+2.
    assert moment_text(datetime(2026, 11, 20, 8, 30, tzinfo=UTC)) == "20 nov 2026, 09:30"
    assert moment_text(datetime(2026, 7, 1, 22, 5, tzinfo=UTC)) == "2 jul 2026, 00:05"
    # The history's ISO strings, any offset, and no moment at all.
    assert moment_text("2026-03-05T10:00:00+00:00") == "5 mrt 2026, 11:00"
    assert moment_text("2026-03-05T10:00:00-05:00") == "5 mrt 2026, 16:00"
    assert moment_text(None) == ""
    assert moment_text(datetime(2026, 1, 1, 12, 0), zone=UTC) == "1 jan 2026, 12:00"


def test_every_status_has_a_dutch_label() -> None:
    assert status_label("unowned") == "Geen eigenaar"
    assert status_label("escalated") == "Geëscaleerd"
    assert status_label("handover-pending") == "Overdracht voorgesteld"
    assert status_label("something-new") == "something-new"


def test_every_refusal_code_reads_as_advice() -> None:
    for code in ("already-owned", "not-owner", "not-found", "invalid", "conflict", "forbidden"):
        assert code in REFUSALS
    assert (
        refusal_text("not-owner") == "Dat kan alleen de organisatie die eigenaar is van deze zaak."
    )
    assert refusal_text("a-code-from-the-future") == "Dat kon niet."


def test_every_verb_the_dashboard_offers_has_a_confirmation() -> None:
    assert set(DONE) == set(VERB_FIELDS)


NAMES = {"woonzorg": "Woonzorg Nederland", "handhaving-nieuw-west": "Handhaving Nieuw-West"}


def named(organisation: str) -> str:
    return NAMES.get(organisation, organisation)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        (
            {"type": "IssueOpened", "organisation": "woonzorg"},
            "Zaak geopend door een melding van Woonzorg Nederland",
        ),
        (
            {"type": "SignalAttached", "organisation": "woonzorg"},
            "Nieuwe melding van Woonzorg Nederland bij deze zaak",
        ),
        (
            {"type": "OwnershipClaimed", "organisation": "woonzorg"},
            "Woonzorg Nederland heeft de zaak opgepakt",
        ),
        (
            {"type": "HandoverOffered", "organisation": "woonzorg", "to": "handhaving-nieuw-west"},
            "Woonzorg Nederland stelt overdracht voor aan Handhaving Nieuw-West",
        ),
        (
            {
                "type": "HandoverAccepted",
                "organisation": "handhaving-nieuw-west",
                "previousOwner": "woonzorg",
            },
            "Handhaving Nieuw-West heeft de overdracht geaccepteerd en is eigenaar "
            "(was Woonzorg Nederland)",
        ),
        (
            {"type": "IssueAbsorbed", "organisation": "woonzorg", "signalCount": 2},
            "Woonzorg Nederland heeft een andere zaak hierbij gevoegd (2 meldingen)",
        ),
        (
            {"type": "IssueEscalated", "organisation": "buurtbeeld"},
            "Geëscaleerd: niet op tijd opgepakt",
        ),
        (
            {"type": "SomethingNew", "organisation": "woonzorg"},
            "SomethingNew door Woonzorg Nederland",
        ),
    ],
)
def test_timeline_entries_read_as_sentences(entry: dict[str, object], said: str) -> None:
    assert timeline_text(entry, named) == said


def test_timeline_details_are_the_words_an_entry_carries() -> None:
    opened = {"type": "IssueOpened", "signal": {"summary": "Bank bij de containers"}}
    assert timeline_detail(opened) == "Bank bij de containers"
    assert timeline_detail({"type": "IssueResolved", "resolution": "Opgehaald"}) == "Opgehaald"
    assert timeline_detail({"type": "IssueReopened", "reason": "Ligt er weer"}) == "Ligt er weer"
    # Need-to-know already took the words out: nothing to show.
    assert timeline_detail({"type": "IssueOpened", "organisation": "woonzorg"}) is None


@pytest.mark.parametrize(
    ("typed", "moment"),
    [
        ("2026-11-20T09:30", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)),  # winter: UTC+1
        ("2026-07-01T12:00:05", datetime(2026, 7, 1, 10, 0, 5, tzinfo=UTC)),  # summer: UTC+2
    ],
)
def test_a_moment_typed_in_dutch_time_is_read_as_one(typed: str, moment: datetime) -> None:
    assert local_moment(typed) == moment
    assert moment_text(local_moment(typed)) == moment_text(moment)


@pytest.mark.parametrize("typed", ["", "gisteren", "2026-11-20T09:30+01:00", "2026-11-31T10:00"])
def test_what_is_not_a_local_moment_is_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        local_moment(typed)
