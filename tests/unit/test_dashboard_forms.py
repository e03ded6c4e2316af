"""The dashboard's forms and filters: where a form may come from and send you, what it offers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from events.contract import Claim, Handover, Resolve
from projections.visibility import IssueView
from services.coordination.refusals import InvalidCommand
from services.dashboard.actions import form_command
from services.dashboard.picture import Filters, available_actions
from services.dashboard.web import comes_from_our_pages, local_path

HOST = "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("headers", "ours"),
    [
        ({"host": HOST, "origin": f"http://{HOST}", "sec-fetch-site": "same-origin"}, True),
        ({"host": HOST, "origin": f"http://{HOST}"}, True),
        ({"host": HOST}, True),  # an older browser: the form token still has to match
        ({"host": HOST, "sec-fetch-site": "none"}, True),  # typed in the address bar
        ({"host": HOST, "origin": "https://evil.example"}, False),
        ({"host": HOST, "origin": "null"}, False),
        ({"host": HOST, "origin": f"http://{HOST}", "sec-fetch-site": "cross-site"}, False),
        ({"host": HOST, "sec-fetch-site": "same-site"}, False),
    ],
)
def test_only_our_own_pages_may_post(headers: dict[str, str], ours: bool) -> None:
    assert comes_from_our_pages(headers) is ours


@pytest.mark.parametrize(
    ("given", "goes_to"),
    [
        ("/buurten/BU0363FD02?status=unowned", "/buurten/BU0363FD02?status=unowned"),
        ("/zaken/BU0363FD02.issue.abc", "/zaken/BU0363FD02.issue.abc"),
        (None, "/buurten"),
        ("", "/buurten"),
        ("https://evil.example/", "/buurten"),
        ("//evil.example/", "/buurten"),
        ("/\\evil.example/", "/buurten"),
        ("buurten", "/buurten"),
        ("javascript:alert(1)", "/buurten"),
    ],
)
def test_after_a_form_we_only_send_you_somewhere_on_this_site(
    given: str | None, goes_to: str
) -> None:
    assert local_path(given, "/buurten") == goes_to


def test_filters_travel_in_the_query_string() -> None:
    filters = Filters.from_query(
        {"status": "unowned", "categorie": "grof-vuil", "eigenaar": "woonzorg", "mijn": "1"}
    )
    assert filters == Filters(status="unowned", category="grof-vuil", owner="woonzorg", mine=True)
    assert filters.active
    assert Filters.from_query(dict(_pairs(filters.query()))) == filters
    # No filters: no query string; a status we do not know is "open".
    assert Filters.from_query({}).query() == ""
    assert not Filters.from_query({"status": "open"}).active
    assert Filters.from_query({"status": "drop table"}).status == "open"
    assert not Filters.from_query({"mijn": ""}).mine


def test_a_moment_to_look_back_at_travels_in_the_query_string_in_dutch_time() -> None:
    filters = Filters.from_query({"peilmoment": "2026-11-20T09:30"})
    assert filters.active
    assert filters.query() == "peilmoment=2026-11-20T09%3A30"
    assert filters.moment() == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)  # CET: UTC+1
    assert Filters().moment() is None
    for unreadable in ("gisteren", "2026-11-20T09:30Z", "2026-13-01T00:00"):
        with pytest.raises(InvalidCommand, match="peilmoment"):
            Filters.from_query({"peilmoment": unreadable}).moment()


def _pairs(query: str) -> list[tuple[str, str]]:
    return [tuple(pair.split("=", 1)) for pair in query.split("&")]  # type: ignore[misc]


def view(**fields: Any) -> IssueView:
    now = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": "BU0363FD02.issue.1",
        "buurt": "BU0363FD02",
        "category": "grof-vuil",
        "category_group": "openbare ruimte",
        "sensitivity": "open",
        "status": "unowned",
        "owner": None,
        "owned_since": None,
        "opened_at": now,
        "updated_at": now,
        "age_seconds": 0,
        "signal_count": 1,
        "reporters": ["woonzorg"],
        "version": 1,
        "handover_to": None,
        "escalated_at": None,
        "due_at": None,
        "resolved_at": None,
        "merged_into": None,
        "content_visible": True,
    }
    return IssueView(**{**values, **fields})


@pytest.mark.parametrize(
    ("fields", "reader", "offered"),
    [
        ({"status": "unowned"}, "woonzorg", {"claim"}),
        ({"status": "escalated"}, "stadgenoot", {"claim"}),
        ({"status": "owned", "owner": "woonzorg"}, "woonzorg", {"handover", "release", "resolve"}),
        ({"status": "owned", "owner": "woonzorg"}, "stadgenoot", set()),
        (
            {"status": "handover-pending", "owner": "woonzorg", "handover_to": "stadgenoot"},
            "stadgenoot",
            {"accept-handover", "decline-handover"},
        ),
        (
            {"status": "handover-pending", "owner": "woonzorg", "handover_to": "stadgenoot"},
            "woonzorg",
            {"release", "resolve"},
        ),
        (
            {"status": "handover-pending", "owner": "woonzorg", "handover_to": "stadgenoot"},
            "eigen-haard",
            set(),
        ),
        ({"status": "resolved", "owner": "woonzorg"}, "stadgenoot", {"reopen"}),
        ({"status": "merged"}, "woonzorg", set()),
    ],
)
def test_the_issue_page_offers_what_the_rules_allow(
    fields: dict[str, Any], reader: str, offered: set[str]
) -> None:
    assert available_actions(view(**fields), reader) == offered


def test_a_form_becomes_the_same_command_a_partner_sends() -> None:
    assert form_command("claim", {"issueId": "BU0363FD02.issue.1"}) == Claim(
        issue_id="BU0363FD02.issue.1"
    )
    assert form_command(
        "handover", {"issueId": "BU0363FD02.issue.1", "actor": "dashboard", "to": "stadgenoot"}
    ) == Handover(issue_id="BU0363FD02.issue.1", actor="dashboard", to="stadgenoot")
    resolve = form_command("resolve", {"issueId": "i", "resolution": "Bank opgehaald"})
    assert resolve == Resolve(issue_id="i", resolution="Bank opgehaald")


def test_a_form_missing_what_the_verb_needs_is_refused_as_invalid() -> None:
    with pytest.raises(InvalidCommand, match="resolution: required"):
        form_command("resolve", {"issueId": "i", "resolution": ""})
    with pytest.raises(InvalidCommand, match="not a valid handover"):
        form_command("handover", {"issueId": "i", "to": "Not A Slug!"})
    with pytest.raises(InvalidCommand, match="not a valid resolve"):
        form_command("resolve", {"issueId": "i", "resolution": "x" * 2001})
