"""Need-to-know (DOMAIN.md), as stories about who sees what of one issue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec

from events.contract import Location, Reporter
from events.personal_data import MemoryKeyStore, PersonalDataVault
from projections.picture import Picture
from projections.reading import issue_event
from projections.timeline import FORGOTTEN, history_entry
from projections.visibility import Visibility, age_seconds
from services.registries import DEFAULT_CATEGORIES, Organisation, OrganisationKind
from tests.unit.test_coordination import BUURT, OTHER_BUURT, Clock, coordination, signal
from tests.unit.test_picture import POPO, stored_events

VISIBILITY = Visibility(DEFAULT_CATEGORIES)


def org(org_id: str, kind: OrganisationKind, *buurten: str) -> Organisation:
    return Organisation(
        id=org_id,
        kind=kind,
        name=org_id,
        token_sha256="0" * 64,
        buurten=frozenset(buurten) if buurten else None,
    )


WOONZORG = org("woonzorg", OrganisationKind.WONINGCORPORATIE)
STADGENOOT = org("stadgenoot", OrganisationKind.WONINGCORPORATIE)
WIJKTEAM = org("wijkteam-nieuw-west", OrganisationKind.WIJKTEAM)
ELSEWHERE = org("ouder-kindteam-osdorp", OrganisationKind.WIJKTEAM, OTHER_BUURT)
BEWONERS = org("bewonersportaal", OrganisationKind.BEWONERS)


# The keys of the personal data in these tests' logs.
VAULT = PersonalDataVault(MemoryKeyStore())


def picture_of(events: list[tuple[int, str, int, bytes]]) -> Picture:
    """The picture the stored `events` fold into."""
    picture = Picture()
    for _, topic, version, body in events:
        event = issue_event(topic, body)
        if event is not None:
            picture.apply(event, version)
    return picture


def lonely_neighbour() -> tuple[Picture, list[tuple[int, str, int, bytes]], Clock]:
    """Woonzorg's caretaker reports an elderly tenant who seems lonely (vertrouwelijk)."""
    clock = Clock()
    app = coordination(POPO, clock, VAULT)
    reported = msgspec.structs.replace(
        signal("wz-9", key="portiek-3", category="eenzaamheid"),
        summary="Mevrouw op nummer 3 komt al weken niet buiten",
        location=Location(key="portiek-3", address="Louweshoek 3"),
        reporter=Reporter(role="huismeester", name="J. de Vries", phone="0612345678"),
        subject_ref="hh-ntk",
    )
    app.receive([("woonzorg", reported)])
    clock.advance(hours=2)
    events = stored_events(app)
    return picture_of(events), events, clock


def test_the_reporter_and_the_allowed_kinds_see_the_content_others_only_who_owns_it() -> None:
    picture, _, clock = lonely_neighbour()
    [row] = picture.rows.values()

    mine = VISIBILITY.view(WOONZORG, row, clock.at)
    assert mine.content_visible and mine.summary == "Mevrouw op nummer 3 komt al weken niet buiten"
    assert mine.category == "eenzaamheid"
    assert mine.location is not None and mine.location.address == "Louweshoek 3"

    team = VISIBILITY.view(WIJKTEAM, row, clock.at)
    assert team.content_visible and team.summary is not None

    other = VISIBILITY.view(STADGENOOT, row, clock.at)
    assert VISIBILITY.may_see(STADGENOOT, row)
    assert not other.content_visible
    assert (other.summary, other.location, other.signals) == (None, None, None)
    assert other.category == "sociaal" == other.category_group
    assert (other.status, other.owner, other.signal_count) == ("unowned", None, 1)
    assert other.age_seconds == int(timedelta(hours=2).total_seconds())


def test_an_organisation_elsewhere_and_a_residents_portal_do_not_see_it() -> None:
    picture, _, _ = lonely_neighbour()
    [row] = picture.rows.values()
    assert not VISIBILITY.may_see_buurt(ELSEWHERE, BUURT)
    assert not VISIBILITY.may_see(ELSEWHERE, row)
    assert not VISIBILITY.may_see(BEWONERS, row)  # not one of its own signals


def test_a_residents_portal_sees_only_the_status_of_a_vertrouwelijk_issue_it_reported() -> None:
    picture, _, clock = lonely_neighbour()
    [row] = picture.rows.values()
    row.reporters.append(BEWONERS.id)  # a resident reported on it too
    seen = VISIBILITY.view(BEWONERS, row, clock.at)
    assert VISIBILITY.may_see(BEWONERS, row) and not seen.content_visible
    assert (seen.summary, seen.location, seen.signals) == (None, None, None)
    assert (seen.status, seen.category) == ("unowned", "sociaal")
    assert VISIBILITY.may_see_content(WOONZORG, row)  # the organisation that reported it


def test_an_open_category_shows_its_content_to_every_organisation_in_the_buurt() -> None:
    clock = Clock()
    app = coordination(POPO, clock)
    app.receive([("woonzorg", signal("wz-1"))])
    [row] = picture_of(stored_events(app)).rows.values()
    view = VISIBILITY.view(STADGENOOT, row, clock.at)
    assert view.content_visible and view.category == "grof-vuil"
    assert view.summary == "Grof vuil naast de containers"


def test_history_hides_content_and_personal_data_from_those_without_need_to_know() -> None:
    _, events, _ = lonely_neighbour()
    [opened] = [issue_event(t, b) for _, t, _, b in events if t == "IssueOpened"]
    assert opened is not None
    unseal = VAULT.unseal
    full = history_entry(
        opened, 1, content=True, personal_data=True, category_shown="eenzaamheid", unseal=unseal
    )
    assert full["type"] == "IssueOpened" and full["version"] == 1
    assert full["signal"]["reporter"]["name"] == "J. de Vries"
    assert full["signal"]["subjectRef"] == "hh-ntk" and "personal" not in full["signal"]
    bare = history_entry(
        opened, 1, content=False, personal_data=False, category_shown="sociaal", unseal=unseal
    )
    assert bare["organisation"] == "woonzorg" and bare["category"] == "sociaal"
    assert "signal" not in bare
    assert b"J. de Vries" not in msgspec.json.encode(bare)


def test_personal_data_shows_only_to_the_sender_the_owner_and_the_kinds_allowed() -> None:
    # Vertrouwelijk: woonzorg sent it, the wijkteam is a kind its category allows.
    picture, _, _ = lonely_neighbour()
    [row] = picture.rows.values()
    may = VISIBILITY.may_see_personal_data
    assert may(WOONZORG, row, "woonzorg") and may(WIJKTEAM, row, "woonzorg")
    assert not may(STADGENOOT, row, "woonzorg")
    # Open: everyone in the buurt sees the content, only the sender and the owner whom
    # the signal names.
    app = coordination(POPO, Clock(), VAULT)
    app.receive(
        [
            (
                "woonzorg",
                msgspec.structs.replace(
                    signal("wz-2"), reporter=Reporter(role="huismeester", name="J. de Vries")
                ),
            )
        ]
    )
    events = stored_events(app)
    [open_row] = picture_of(events).rows.values()
    assert VISIBILITY.may_see_content(STADGENOOT, open_row)
    assert not may(STADGENOOT, open_row, "woonzorg")
    assert not may(WIJKTEAM, open_row, "woonzorg")
    assert may(WOONZORG, open_row, "woonzorg")
    open_row.owner = "stadgenoot"  # it claimed the issue: it needs to know whom to call
    assert may(STADGENOOT, open_row, "woonzorg")

    [opened] = [issue_event(t, b) for _, t, _, b in events if t == "IssueOpened"]
    assert opened is not None
    entry = history_entry(
        opened,
        1,
        content=True,
        personal_data=False,
        category_shown="grof-vuil",
        unseal=VAULT.unseal,
    )
    assert entry["signal"]["summary"] == "Grof vuil naast de containers"
    assert not {"reporter", "subjectRef", "personal", FORGOTTEN} & set(entry["signal"])
    assert b"J. de Vries" not in msgspec.json.encode(entry)


def test_once_the_subject_is_forgotten_the_history_says_so_and_keeps_the_rest() -> None:
    vault = PersonalDataVault(MemoryKeyStore())
    app = coordination(POPO, Clock(), vault)
    reported = msgspec.structs.replace(
        signal("wz-9", key="portiek-3", category="eenzaamheid"),
        reporter=Reporter(role="huismeester", name="J. de Vries", phone="0612345678"),
        subject_ref="hh-forget",
    )
    app.receive([("woonzorg", reported)])
    [opened] = [issue_event(t, b) for _, t, _, b in stored_events(app) if t == "IssueOpened"]
    assert opened is not None

    # Another organisation cannot forget woonzorg's subject: theirs is another name.
    assert not vault.forget("stadgenoot", subject_ref="hh-forget")
    assert vault.forget("woonzorg", subject_ref="hh-forget")
    assert not vault.forget("woonzorg", subject_ref="hh-forget")  # once is enough

    def entitled() -> dict[str, Any]:
        """The opening as a reader entitled to its personal data sees it."""
        return history_entry(
            opened,
            1,
            content=True,
            personal_data=True,
            category_shown="eenzaamheid",
            unseal=vault.unseal,
        )

    entry = entitled()
    assert entry["signal"][FORGOTTEN] == ["subjectRef"]
    assert entry["signal"]["reporter"]["name"] == "J. de Vries"  # the caretaker is someone else
    assert vault.forget("woonzorg", reporter=Reporter(name="J. de Vries", phone="0612345678"))
    entry = entitled()
    assert entry["signal"][FORGOTTEN] == ["reporter", "subjectRef"]
    assert entry["signal"]["summary"] == reported.summary
    assert (entry["organisation"], entry["at"]) == ("woonzorg", msgspec.to_builtins(opened.at))
    encoded = msgspec.json.encode(entry)
    assert b"J. de Vries" not in encoded and b"hh-forget" not in encoded


def test_an_encoded_view_is_the_view_encoded_with_its_age_written_in_between() -> None:
    picture, _, clock = lonely_neighbour()
    [row] = picture.rows.values()
    # A summary that looks like the key the view is cut at changes nothing.
    row.summary = 'zegt "ageSeconds":0, en \\"ageSeconds\\":0,'
    row.signals[0] = msgspec.structs.replace(row.signals[0], summary='"ageSeconds":0,')
    for reader in (WOONZORG, STADGENOOT, WIJKTEAM):
        for later in (timedelta(0), timedelta(seconds=59.999999), timedelta(days=400)):
            now = clock.at + later
            content = VISIBILITY.may_see_content(reader, row)
            head, tail, category = VISIBILITY.encoded_view(row, content=content)
            age = b"%d" % age_seconds(row.opened_at, now)
            view = VISIBILITY.view(reader, row, now)
            assert head + age + tail == msgspec.json.encode(view)
            assert category == view.category
    # An issue opened after `now` (clocks differ) is of age 0, never negative.
    assert age_seconds(clock.at, clock.at - timedelta(seconds=5)) == 0
