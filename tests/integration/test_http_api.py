"""The HTTP API of CONTRACT.md on a real `buurtbeeld up`, used as a partner would.

Signals go in on NATS (plain nats-py); the picture is read, and issues are
acted on, over HTTP with the organisation's bearer token.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from events.contract import COMMANDS
from tests.integration.buurtbeeld_process import BuurtbeeldUp
from tests.integration.system_support import BUURT, OTHER_BUURT, System, token_of

PROBLEM_JSON = "application/problem+json"
FILTER_BUURT = "BU0363FG02"


def issues_path(buurt: str = BUURT) -> str:
    return f"/api/v1/buurten/{buurt}/issues"


def assert_problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """`answer` is an RFC 9457 problem with `status` and the contract's `code`."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert answer.headers["api-version"] == "1.0.0"
    problem: dict[str, Any] = answer.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["type"] and problem["title"] and problem["detail"]
    return problem


def test_health_needs_no_token_and_the_ready_line_says_where_http_is(system: System) -> None:
    # The trivial endpoint answers anyone.
    answer = system.get(None, "/api/v1/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    # Every answer says the API's full version (NL API Design Rules).
    assert answer.headers["api-version"] == "1.0.0"

    # `buurtbeeld.ready` names the API and the dashboard (its root), which answers.
    assert system.ready["dashboard_url"] == system.http_url + "/"
    assert system.up.wait_for("http.ready", within=0)["url"] == system.http_url
    with httpx.Client(timeout=30) as client:
        assert client.get(system.ready["dashboard_url"]).status_code < 400


def test_without_a_valid_token_every_api_request_is_refused_with_401(system: System) -> None:
    issue_id = f"{BUURT}.issue.whatever"
    paths = [issues_path(), f"/api/v1/issues/{issue_id}", f"/api/v1/issues/{issue_id}/history"]
    for path in paths:
        # No token at all.
        with httpx.Client(base_url=system.http_url) as client:
            answer = client.get(path)
        assert_problem(answer, 401, "unauthenticated")
        assert answer.headers["www-authenticate"].startswith("Bearer")

        # A token of no organisation.
        bad = {"Authorization": "Bearer not-a-token-of-anyone"}
        with httpx.Client(base_url=system.http_url, headers=bad) as client:
            answer = client.get(path)
        assert_problem(answer, 401, "unauthenticated")
        assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'

        # A valid token, but not as a bearer token.
        basic = {"Authorization": f"Basic {token_of('woonzorg')}"}
        with httpx.Client(base_url=system.http_url, headers=basic) as client:
            assert_problem(client.get(path), 401, "unauthenticated")

    # Acting needs a token too.
    with httpx.Client(base_url=system.http_url) as client:
        answer = client.post(f"/api/v1/issues/{issue_id}/claim", json={})
    assert_problem(answer, 401, "unauthenticated")


def test_an_organisation_not_active_in_the_buurt_gets_403(system: System) -> None:
    # Woonzorg reports something in BUURT, where buurtwerk-osdorp is not active.
    system.publish(
        "woonzorg",
        signalRef="http-403",
        category="grof-vuil",
        summary="Bank op de stoep (403)",
        location={"key": "http-403"},
    )
    issue = system.issue_with("woonzorg", "Bank op de stoep (403)")

    # It may not read the buurt's picture, nor act on its issues.
    assert_problem(system.get("buurtwerk-osdorp", issues_path()), 403, "forbidden")
    claim = system.post("buurtwerk-osdorp", f"/api/v1/issues/{issue['id']}/claim")
    assert_problem(claim, 403, "forbidden")
    # An issue it may not see does not exist for it.
    assert_problem(
        system.get("buurtwerk-osdorp", f"/api/v1/issues/{issue['id']}"), 404, "not-found"
    )

    # Its own buurt it may read.
    own = system.get("buurtwerk-osdorp", issues_path(OTHER_BUURT))
    assert own.status_code == 200
    assert own.json()["buurt"] == OTHER_BUURT


def test_need_to_know_a_vertrouwelijk_issue_shows_its_content_only_to_those_who_may_see_it(
    system: System,
) -> None:
    # Woonzorg's caretaker reports a lonely resident: vertrouwelijk, with personal data.
    summary = "Mevrouw op 3-hoog komt de deur niet meer uit"
    system.publish(
        "woonzorg",
        signalRef="http-ntk",
        category="eenzaamheid",
        summary=summary,
        location={"key": "http-ntk-3hoog", "address": "Louweshoek 3"},
        reporter={"role": "huismeester", "name": "J. de Vries", "phone": "0612345678"},
        subjectRef="hh-ntk",
    )
    seen_by_reporter = system.issue_with("woonzorg", summary)
    issue_id = seen_by_reporter["id"]
    assert seen_by_reporter["contentVisible"] is True
    assert seen_by_reporter["location"]["address"] == "Louweshoek 3"

    # The wijkteam (a kind the category allows) sees the content and claims it.
    seen_by_wijkteam = system.get("wijkteam-nieuw-west", f"/api/v1/issues/{issue_id}").json()
    assert seen_by_wijkteam["summary"] == summary
    assert seen_by_wijkteam["category"] == "eenzaamheid"
    claimed = system.post("wijkteam-nieuw-west", f"/api/v1/issues/{issue_id}/claim")
    assert claimed.json() == {"ok": True, "issueId": issue_id, "version": 2}
    system.issue_at_version("wijkteam-nieuw-west", issue_id, 2)

    # Another woningcorporatie, which did not report it, sees that it exists, its
    # status and owner, but not what it is about or where.
    other = system.get("stadgenoot", f"/api/v1/issues/{issue_id}").json()
    assert other["status"] == "owned"
    assert other["owner"] == "wijkteam-nieuw-west"
    assert other["sensitivity"] == "vertrouwelijk"
    assert other["category"] == "sociaal"
    assert other["reporters"] == ["woonzorg"]
    assert other["contentVisible"] is False
    assert other["summary"] is None and other["location"] is None and other["signals"] is None
    picture = system.get("stadgenoot", issues_path(), status="all")
    [listed] = [i for i in picture.json()["issues"] if i["id"] == issue_id]
    assert listed == {**other, "ageSeconds": listed["ageSeconds"]}
    history = system.get("stadgenoot", f"/api/v1/issues/{issue_id}/history")
    assert [e["type"] for e in history.json()["events"]] == ["IssueOpened", "OwnershipClaimed"]
    for text in (summary, "Louweshoek", "http-ntk-3hoog"):
        assert text not in picture.text and text not in history.text

    # Those who may see the content find it in the history too.
    for reader in ("woonzorg", "wijkteam-nieuw-west"):
        events = system.get(reader, f"/api/v1/issues/{issue_id}/history").json()["events"]
        assert events[0]["signal"]["summary"] == summary

    # Personal data is never in the picture, not even for those who see the content.
    for reader in ("woonzorg", "wijkteam-nieuw-west", "stadgenoot"):
        answer = system.get(reader, issues_path(), status="all").text
        assert "J. de Vries" not in answer and "0612345678" not in answer and "hh-ntk" not in answer


def test_the_live_picture_shows_each_reader_its_own_content_asked_in_turn_as_it_changes(
    system: System,
) -> None:
    # Woonzorg reports a household in debt: vertrouwelijk.
    summary = "Gezin op 5-hoog heeft huurachterstand (live)"
    system.publish(
        "woonzorg",
        signalRef="http-live-ntk",
        category="schulden",
        summary=summary,
        location={"key": "http-live-5hoog", "address": "Louweshoek 5"},
    )
    issue_id = system.issue_with("woonzorg", summary)["id"]

    def picture(reader: str) -> dict[str, Any]:
        answer = system.get(reader, issues_path())  # the live picture: kept between commits
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def shown(reader: str, at_least: int = 1) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            [issue] = [i for i in picture(reader)["issues"] if i["id"] == issue_id]
            if issue["version"] >= at_least or time.monotonic() > deadline:
                return dict(issue)
            time.sleep(0.05)

    # Asked in turn, back to back: each reader its own need-to-know, never another's.
    for _ in range(3):
        assert shown("woonzorg")["summary"] == summary  # reported it
        assert shown("wijkteam-nieuw-west")["summary"] == summary  # a kind schulden allows
        hidden = shown("stadgenoot")
        assert (hidden["summary"], hidden["location"]) == (None, None)
        assert hidden["category"] == "sociaal"
        assert summary not in system.get("stadgenoot", issues_path()).text
        assert summary not in system.get("bewonersportaal", issues_path()).text

    # Stadgenoot claims it: as its owner it sees the content, and has it among its own...
    claimed = system.post("stadgenoot", f"/api/v1/issues/{issue_id}/claim").json()
    assert shown("stadgenoot", claimed["version"])["summary"] == summary
    assert issue_id in picture("stadgenoot")["mine"]
    assert shown("woonzorg")["owner"] == "stadgenoot"
    # ...until it lets go of it.
    released = system.post("stadgenoot", f"/api/v1/issues/{issue_id}/release").json()
    assert shown("stadgenoot", released["version"])["summary"] is None
    assert issue_id not in picture("stadgenoot")["mine"]
    assert shown("wijkteam-nieuw-west", released["version"])["summary"] == summary


def test_filters_by_status_owner_and_category(system: System) -> None:
    # Three issues in a buurt of their own: grof vuil (woonzorg claims it), onderhoud
    # (stadgenoot claims and resolves it) and overlast (nobody's).
    for ref, category in (("f1", "grof-vuil"), ("f2", "onderhoud"), ("f3", "overlast")):
        system.publish(
            "woonzorg",
            buurt=FILTER_BUURT,
            signalRef=f"http-filter-{ref}",
            category=category,
            summary=f"Filter {category}",
            location={"key": f"http-filter-{ref}"},
        )
    ids = {
        category: system.issue_with("woonzorg", f"Filter {category}", FILTER_BUURT)["id"]
        for category in ("grof-vuil", "onderhoud", "overlast")
    }
    assert system.post("woonzorg", f"/api/v1/issues/{ids['grof-vuil']}/claim").status_code == 200
    assert system.post("stadgenoot", f"/api/v1/issues/{ids['onderhoud']}/claim").status_code == 200
    resolved = system.post(
        "stadgenoot", f"/api/v1/issues/{ids['onderhoud']}/resolve", {"resolution": "Gemaakt"}
    )
    assert resolved.status_code == 200
    system.issue_at_version("woonzorg", ids["onderhoud"], resolved.json()["version"])
    system.issue_at_version("woonzorg", ids["grof-vuil"], 2)

    def listed(**params: str) -> list[str]:
        answer = system.get("woonzorg", issues_path(FILTER_BUURT), **params)
        assert answer.status_code == 200, answer.text
        return sorted(i["category"] for i in answer.json()["issues"])

    # Open (the default) leaves out what is resolved; the unowned come first.
    picture = system.get("woonzorg", issues_path(FILTER_BUURT)).json()
    assert [i["category"] for i in picture["issues"]] == ["overlast", "grof-vuil"]
    assert picture["counts"]["byStatus"] == {"unowned": 1, "owned": 1}
    assert picture["mine"] == [ids["grof-vuil"]]
    assert listed(status="open") == ["grof-vuil", "overlast"]
    assert listed(status="resolved") == ["onderhoud"]
    assert listed(status="all") == ["grof-vuil", "onderhoud", "overlast"]
    assert listed(status="unowned") == ["overlast"]
    assert listed(status="all", owner="stadgenoot") == ["onderhoud"]
    assert listed(owner="woonzorg") == ["grof-vuil"]
    assert listed(category="overlast") == ["overlast"]
    assert listed(status="all", category="onderhoud", owner="stadgenoot") == ["onderhoud"]
    assert listed(category="armoede") == []

    # A status that is not one is refused, as problem+json.
    assert_problem(system.get("woonzorg", issues_path(), status="lost"), 400, "invalid")
    assert_problem(system.get("woonzorg", issues_path("BU123")), 400, "invalid")


def test_as_of_shows_the_picture_as_it_was(system: System) -> None:
    before = datetime.now(UTC)
    system.publish(
        "woonzorg",
        signalRef="http-asof",
        category="verloedering",
        summary="Graffiti op de geluidswal",
        location={"key": "http-asof"},
    )
    issue = system.issue_with("woonzorg", "Graffiti op de geluidswal")
    # Moment T: the issue is open and nobody's. Then the wijkteam claims it.
    moment = datetime.now(UTC)
    time.sleep(0.05)
    claimed = system.post("wijkteam-nieuw-west", f"/api/v1/issues/{issue['id']}/claim")
    assert claimed.status_code == 200
    system.issue_at_version("woonzorg", issue["id"], 2)

    def as_seen(**params: str) -> dict[str, Any]:
        answer = system.get("woonzorg", issues_path(), status="all", **params)
        assert answer.status_code == 200, answer.text
        return {i["id"]: i for i in answer.json()["issues"]}

    # Now it is owned; as of T, the claim is not in the picture.
    assert as_seen()[issue["id"]]["owner"] == "wijkteam-nieuw-west"
    then = system.get("woonzorg", issues_path(), status="all", asOf=moment.isoformat()).json()
    assert datetime.fromisoformat(then["asOf"]) == moment
    [was] = [i for i in then["issues"] if i["id"] == issue["id"]]
    assert (was["status"], was["owner"], was["version"]) == ("unowned", None, 1)
    # The same moment in another offset, and in Z form, is the same picture.
    amsterdam = moment.astimezone(timezone(timedelta(hours=1))).isoformat()
    assert as_seen(asOf=amsterdam)[issue["id"]]["status"] == "unowned"
    # Answered in UTC, whatever the offset asked in.
    in_utc = system.get("woonzorg", issues_path(), asOf=amsterdam).json()["asOf"]
    assert in_utc.endswith("Z") and datetime.fromisoformat(in_utc) == moment
    zulu = moment.isoformat().replace("+00:00", "Z")
    assert as_seen(asOf=zulu)[issue["id"]]["status"] == "unowned"
    # Before the signal, the issue did not exist.
    assert issue["id"] not in as_seen(asOf=(before - timedelta(seconds=1)).isoformat())

    # A moment without an offset, in the future, or not a moment at all: invalid.
    for bad in (
        "2026-11-20T09:30:00",
        (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "gisteren",
    ):
        assert_problem(system.get("woonzorg", issues_path(), asOf=bad), 400, "invalid")


def test_every_verb_over_http_with_the_contract_replies_and_refusals(system: System) -> None:
    for ref in ("a", "b"):
        system.publish(
            "woonzorg",
            signalRef=f"http-verbs-{ref}",
            category="grof-vuil",
            summary=f"Matras bij de containers ({ref})",
            location={"key": f"http-verbs-{ref}"},
        )
    a = system.issue_with("woonzorg", "Matras bij de containers (a)")["id"]
    b = system.issue_with("woonzorg", "Matras bij de containers (b)")["id"]
    versions: list[int] = []

    def act(
        organisation: str, verb: str, body: dict[str, Any] | bytes | None = None
    ) -> httpx.Response:
        return system.post(organisation, f"/api/v1/issues/{a}/{verb}", body)

    def accepted(answer: httpx.Response, issue_id: str = a) -> None:
        assert answer.status_code == 200, answer.text
        reply = answer.json()
        assert reply == {"ok": True, "issueId": issue_id, "version": reply["version"]}
        if issue_id == a:
            assert not versions or reply["version"] > versions[-1]
            versions.append(reply["version"])

    # claim, with no body at all: the issue is the path's.
    accepted(act("wijkteam-nieuw-west", "claim"))
    assert versions == [2]
    # Claiming an owned issue, with the issueId in the body: already-owned.
    assert_problem(act("woonzorg", "claim", {"issueId": a}), 409, "already-owned")
    # Only the owner releases, resolves or hands over: not-owner.
    assert_problem(act("woonzorg", "release", {}), 409, "not-owner")
    assert_problem(act("woonzorg", "resolve", {"resolution": "Weg"}), 409, "not-owner")
    # handover → decline-handover → handover → accept-handover.
    accepted(act("wijkteam-nieuw-west", "handover", {"to": "stadgenoot"}))
    # Only the organisation it is offered to accepts it: forbidden for others.
    assert_problem(act("woonzorg", "accept-handover"), 403, "forbidden")
    accepted(act("stadgenoot", "decline-handover", {}))
    accepted(act("wijkteam-nieuw-west", "handover", {"issueId": a, "to": "stadgenoot"}))
    accepted(act("stadgenoot", "accept-handover"))
    # release, claim, resolve, reopen.
    accepted(act("stadgenoot", "release"))
    accepted(act("woonzorg", "claim", {"actor": "j.devries"}))
    accepted(act("woonzorg", "resolve", {"resolution": "Opgehaald door de gemeente"}))
    accepted(act("stadgenoot", "reopen", {"reason": "Er ligt weer een matras"}))
    # merge b into a.
    merged = system.post("woonzorg", f"/api/v1/issues/{b}/merge", {"into": a})
    accepted(merged, b)

    # Invalid requests: a body field missing or malformed, the body's issueId not the
    # path's, a body that is not JSON, an unknown verb.
    assert_problem(act("woonzorg", "resolve", {}), 400, "invalid")
    assert_problem(act("woonzorg", "reopen", {"reason": ""}), 400, "invalid")
    assert_problem(act("woonzorg", "handover", {"to": "Not An Organisation!"}), 400, "invalid")
    assert_problem(act("woonzorg", "claim", {"issueId": b}), 400, "invalid")
    assert_problem(act("woonzorg", "claim", b"{not json"), 400, "invalid")
    assert_problem(act("woonzorg", "claim", b"[1, 2]"), 400, "invalid")
    assert_problem(act("woonzorg", "shout"), 404, "not-found")
    # An issue that does not exist.
    missing = system.post("woonzorg", f"/api/v1/issues/{BUURT}.issue.nope/claim")
    assert_problem(missing, 404, "not-found")

    # The history tells it all, in order; the picture shows where it ended (the
    # merge added an event to a as well).
    system.issue_at_version("woonzorg", a, versions[-1] + 1)
    history = system.get("woonzorg", f"/api/v1/issues/{a}/history").json()
    assert history["issueId"] == a
    events = history["events"]
    assert [e["type"] for e in events] == [
        "IssueOpened",
        "OwnershipClaimed",
        "HandoverOffered",
        "HandoverDeclined",
        "HandoverOffered",
        "HandoverAccepted",
        "OwnershipReleased",
        "OwnershipClaimed",
        "IssueResolved",
        "IssueReopened",
        "IssueAbsorbed",
    ]
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert [e["organisation"] for e in events[1:4]] == [
        "wijkteam-nieuw-west",
        "wijkteam-nieuw-west",
        "stadgenoot",
    ]
    assert all(datetime.fromisoformat(e["at"]).utcoffset() == timedelta(0) for e in events)
    now_a = system.get("woonzorg", f"/api/v1/issues/{a}").json()
    assert (now_a["status"], now_a["owner"], now_a["signalCount"]) == ("unowned", None, 2)
    now_b = system.issue_at_version("woonzorg", b, 2)
    assert (now_b["status"], now_b["mergedInto"]) == ("merged", a)
    assert_problem(
        system.get("woonzorg", f"/api/v1/issues/{BUURT}.issue.nope/history"), 404, "not-found"
    )


def test_the_openapi_document_describes_the_api(system: System) -> None:
    answer = system.get(None, "/api/v1/openapi.json")
    assert answer.status_code == 200
    assert "json" in answer.headers["content-type"]
    document = answer.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]

    # Every endpoint of the contract, every verb.
    paths = document["paths"]
    for path in (
        "/api/v1/buurten/{buurt}/issues",
        "/api/v1/issues/{issueId}",
        "/api/v1/issues/{issueId}/history",
    ):
        assert "get" in paths[path]
    for verb in COMMANDS:
        assert "post" in paths[f"/api/v1/issues/{{issueId}}/{verb}"]
    query = {p["name"] for p in paths["/api/v1/buurten/{buurt}/issues"]["get"]["parameters"]}
    assert {"buurt", "status", "owner", "category", "asOf"} <= query

    # Bearer tokens, on everything but the health check.
    schemes = document["components"]["securitySchemes"]
    [(name, scheme)] = schemes.items()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, operations in paths.items():
        for operation in operations.values():
            expected = [] if path == "/api/v1/health" else [{name: []}]
            assert operation.get("security", []) == expected, path

    # Every reference resolves; answers, bodies and problems have their schemas.
    schemas = document["components"]["schemas"]
    for ref in _references(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
    listing = paths["/api/v1/buurten/{buurt}/issues"]["get"]["responses"]["200"]
    picture = listing["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"buurt", "asOf", "issues"} <= set(schemas[picture]["properties"])
    issue = schemas["IssueView"]["properties"]
    contract_fields = ["id", "buurt", "category", "sensitivity", "status", "owner"]
    contract_fields += ["ownedSince", "openedAt", "signalCount", "reporters", "version"]
    assert set(contract_fields) <= set(issue)
    claim = paths["/api/v1/issues/{issueId}/handover"]["post"]
    body = claim["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "to" in schemas[body.rsplit("/", 1)[1]]["properties"]
    assert "application/problem+json" in claim["responses"]["409"]["content"]


def test_unknown_api_paths_and_methods_are_problems_too(system: System) -> None:
    assert_problem(system.get("woonzorg", "/api/v1/nothing-here"), 404, "not-found")
    with system.http("woonzorg") as client:
        assert_problem(client.delete(f"/api/v1/issues/{BUURT}.issue.x"), 405, "method-not-allowed")


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for item in node for r in _references(item)]
    return []


def test_a_taken_http_port_fails_the_start_clearly_before_nats_starts(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(up_env["BUURTBEELD_HTTP_PORT"])))
        squatter.listen()

        up = start_up(up_env)

        assert up.wait() == 1
    assert "BUURTBEELD_HTTP_PORT" in "".join(up.output)
    assert "buurtbeeld.failed" in up.events()
    assert "nats.embedded.started" not in up.events()


def test_personal_data_is_sealed_in_the_log_shown_to_those_entitled_and_can_be_forgotten(
    system: System,
) -> None:
    # Woonzorg's caretaker reports a household in trouble, naming the caretaker and
    # the household: personal data.
    summary = "Gezin op 7-hoog vraagt om hulp (vergeten)"
    system.publish(
        "woonzorg",
        signalRef="http-forget",
        category="eenzaamheid",
        summary=summary,
        location={"key": "http-forget-7hoog", "address": "Louweshoek 7"},
        reporter={"role": "huismeester", "name": "P. Jansen", "phone": "0687654321"},
        subjectRef="hh-forget-7",
    )
    issue_id = system.issue_with("woonzorg", summary)["id"]
    personal = ("P. Jansen", "0687654321", "hh-forget-7")

    # The event log, as partners read it on NATS, holds the personal data only sealed.
    events = system.as_partner(lambda partner: partner.events(f"events.{BUURT}.issue.>"))
    [(_, opened)] = [(s, e) for s, e in events if e.get("issueId") == issue_id]
    assert [part["field"] for part in opened["signal"]["personal"]] == ["reporter", "subjectRef"]
    for datum in personal:
        assert datum not in str(events)

    # Those entitled to the content see it, unsealed, in the issue's history.
    def history(reader: str) -> dict[str, Any]:
        answer = system.get(reader, f"/api/v1/issues/{issue_id}/history")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["events"][0]["signal"])

    shown = history("wijkteam-nieuw-west")
    assert shown["reporter"] == {"role": "huismeester", "name": "P. Jansen", "phone": "0687654321"}
    assert shown["subjectRef"] == "hh-forget-7" and "personal" not in shown

    # Another organisation cannot forget woonzorg's household; a body must name one subject.
    other = system.post("stadgenoot", "/api/v1/personal-data/forget", {"subjectRef": "hh-forget-7"})
    assert other.status_code == 200 and other.json() == {"ok": True, "forgotten": False}
    assert_problem(system.post("woonzorg", "/api/v1/personal-data/forget", {}), 400, "invalid")
    both = {"subjectRef": "hh-forget-7", "reporter": {"name": "P. Jansen"}}
    assert_problem(system.post("woonzorg", "/api/v1/personal-data/forget", both), 400, "invalid")
    assert history("woonzorg")["subjectRef"] == "hh-forget-7"

    # Woonzorg forgets the household, on NATS as CONTRACT.md's commands go.
    reply = system.as_partner(
        lambda partner: partner.request(
            "woonzorg", "forget-personal-data", {"subjectRef": "hh-forget-7"}
        )
    )
    assert reply == {"ok": True, "forgotten": True}
    again = system.post("woonzorg", "/api/v1/personal-data/forget", {"subjectRef": "hh-forget-7"})
    assert again.json() == {"ok": True, "forgotten": False}

    # Now nobody can read it, anywhere; who did what, when, stays.
    for reader in ("woonzorg", "wijkteam-nieuw-west"):
        forgotten = history(reader)
        assert forgotten["forgotten"] == ["subjectRef"] and "subjectRef" not in forgotten
        assert forgotten["summary"] == summary and forgotten["organisation"] == "woonzorg"
        assert forgotten["reporter"]["name"] == "P. Jansen"  # another data subject
    # And the caretaker, who asked to be forgotten too (as their signals named them).
    caretaker = {"reporter": {"name": "p. jansen", "phone": "06 8765 4321"}}
    answer = system.post("woonzorg", "/api/v1/personal-data/forget", caretaker)
    assert answer.json() == {"ok": True, "forgotten": True}
    assert history("wijkteam-nieuw-west")["forgotten"] == ["reporter", "subjectRef"]
    answer = system.get("woonzorg", f"/api/v1/issues/{issue_id}/history").text
    for datum in personal:
        assert datum not in answer


def test_an_open_category_shows_its_content_to_the_buurt_and_its_personal_data_to_few(
    system: System,
) -> None:
    summary = "Fietswrakken bij de ingang (melder bekend)"
    system.publish(
        "woonzorg",
        signalRef="http-open-personal",
        category="grof-vuil",
        summary=summary,
        location={"key": "http-open-ingang", "address": "Louweshoek 9"},
        reporter={"role": "huismeester", "name": "K. Bakker", "phone": "0611122233"},
    )
    issue_id = system.issue_with("woonzorg", summary)["id"]

    def opened(reader: str) -> dict[str, Any]:
        answer = system.get(reader, f"/api/v1/issues/{issue_id}/history")
        assert answer.status_code == 200, answer.text
        [entry] = [e for e in answer.json()["events"] if e["type"] == "IssueOpened"]
        signal: dict[str, Any] = entry["signal"]
        return signal

    # Every organisation in the buurt sees what is going on; whom to call, only the sender.
    seen = opened("stadgenoot")
    assert seen["summary"] == summary and "reporter" not in seen
    assert "K. Bakker" not in str(seen) and "0611122233" not in str(seen)
    assert opened("woonzorg")["reporter"]["name"] == "K. Bakker"
    # The owner, once it has claimed the issue, needs to know it.
    claimed = system.post("stadgenoot", f"/api/v1/issues/{issue_id}/claim", {})
    assert claimed.status_code == 200, claimed.text
    owned = system.issue_at_version("stadgenoot", issue_id, claimed.json()["version"])
    assert owned["owner"] == "stadgenoot"
    assert opened("stadgenoot")["reporter"]["phone"] == "0611122233"


def test_a_picture_asked_again_comes_in_gzip_to_clients_that_accept_it(system: System) -> None:
    summary = "Fietswrakken bij de stalling (gzip)"
    system.publish(
        "woonzorg",
        signalRef="http-gzip",
        category="grof-vuil",
        summary=summary,
        location={"key": "http-gzip-stalling", "address": "Louweshoek 9"},
    )
    system.issue_with("woonzorg", summary)

    # One kept-alive client: a kept answer is given `GZIP_AFTER` times within its second.
    with system.http("woonzorg") as client:

        def asked(accept_encoding: str | None) -> tuple[httpx.Response, Any]:
            """The answer, and its picture as it came (decoded here, not by httpx)."""
            headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
            with client.stream("GET", issues_path(), headers=headers) as answer:
                raw = b"".join(answer.iter_raw())
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json"
            assert answer.headers["vary"] == "Accept-Encoding"
            gzipped = answer.headers.get("content-encoding") == "gzip"
            return answer, json.loads(gzip.decompress(raw) if gzipped else raw)

        def in_gzip(accept_encoding: str | None) -> Any:
            """Asked until it comes in gzip: once it is kept (a polled buurt), it does."""
            deadline = time.monotonic() + 30
            while True:
                answer, picture = asked(accept_encoding)
                if answer.headers.get("content-encoding") == "gzip":
                    return picture
                assert time.monotonic() < deadline, "never in gzip"

        def without_time(picture: dict[str, Any]) -> dict[str, Any]:
            issues = [{k: v for k, v in i.items() if k != "ageSeconds"} for i in picture["issues"]]
            return {**picture, "asOf": None, "issues": issues}

        # In gzip, the same picture as a client that takes no gzip gets, however often it asks.
        for not_gzip in ("identity", "gzip;q=0, deflate", "deflate, br"):
            while True:
                picture = in_gzip("gzip, deflate")
                never = [asked(not_gzip) for _ in range(3)]
                assert all("content-encoding" not in answer.headers for answer, _ in never)
                if all(p["position"] == picture["position"] for _, p in never):
                    break  # else the buurt changed in between: ask again
            assert summary in [i["summary"] for i in picture["issues"]]
            assert all(without_time(p) == without_time(picture) for _, p in never)

        # httpx asks for gzip by itself (as browsers do), and reads it.
        assert "gzip" in client.headers["accept-encoding"]
        assert summary in [i["summary"] for i in in_gzip(None)["issues"]]
