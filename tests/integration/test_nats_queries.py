"""NATS request/reply queries (`query.<org>.<question>`) on a real `buurtbeeld up`:
the same answers as the HTTP API, refusals as for commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.integration.partner_support import Partner
from tests.integration.system_support import BUURT, OTHER_BUURT, System

# Fields that depend on the moment of asking.
OF_THE_MOMENT = ("asOf", "ageSeconds", "position")


def ask(system: System, questions: list[tuple[str, bytes | dict[str, Any]]]) -> list[Any]:
    """The replies to `(subject, body)` requests, as a partner asks them with nats-py."""

    async def work(partner: Partner) -> list[Any]:
        replies = []
        for subject, body in questions:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            reply = await partner.nc.request(subject, data, timeout=30)
            replies.append(json.loads(reply.data))
        return replies

    result: list[Any] = system.as_partner(work)
    return result


def without_the_moment(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {k: without_the_moment(v) for k, v in answer.items() if k not in OF_THE_MOMENT}
    if isinstance(answer, list):
        return [without_the_moment(item) for item in answer]
    return answer


def test_queries_answer_as_the_http_api_does(system: System) -> None:
    # An open and a vertrouwelijk issue; the wijkteam claims the second.
    system.publish(
        "woonzorg",
        signalRef="nq-open",
        category="grof-vuil",
        summary="Koelkast op de stoep",
        location={"key": "nq-open"},
    )
    system.publish(
        "woonzorg",
        signalRef="nq-secret",
        category="schulden",
        summary="Huurachterstand en post die niet wordt geopend",
        location={"key": "nq-secret", "address": "Louweshoek 7"},
    )
    secret = system.issue_with("woonzorg", "Huurachterstand en post die niet wordt geopend")
    claimed = system.post("wijkteam-nieuw-west", f"/api/v1/issues/{secret['id']}/claim")
    assert claimed.status_code == 200
    system.issue_at_version("woonzorg", secret["id"], 2)
    moment = datetime.now(UTC).isoformat()

    for reader in ("woonzorg", "stadgenoot", "wijkteam-nieuw-west", "bewonersportaal"):
        issues, issues_then, owned, issue, history = ask(
            system,
            [
                (f"query.{reader}.issues", {"buurt": BUURT, "status": "all"}),
                (f"query.{reader}.issues", {"buurt": BUURT, "status": "all", "asOf": moment}),
                (
                    f"query.{reader}.issues",
                    {"buurt": BUURT, "owner": "wijkteam-nieuw-west", "category": "sociaal"},
                ),
                (f"query.{reader}.issue", {"issueId": secret["id"]}),
                (f"query.{reader}.history", {"issueId": secret["id"]}),
            ],
        )
        path = f"/api/v1/buurten/{BUURT}/issues"
        by_http = system.get(reader, path, status="all").json()
        assert without_the_moment(issues) == without_the_moment(by_http)
        # As of one moment, the answers are the same to the byte.
        assert issues_then == system.get(reader, path, status="all", asOf=moment).json()
        by_http = system.get(reader, path, owner="wijkteam-nieuw-west", category="sociaal")
        assert without_the_moment(owned) == without_the_moment(by_http.json())
        if reader == "bewonersportaal":
            # A residents' portal sees only its own signals' issues: this one is not there.
            assert issues["issues"] == []
            assert issue["ok"] is False and issue["code"] == "not-found"
            assert history["ok"] is False and history["code"] == "not-found"
            continue
        assert [i["id"] for i in owned["issues"]] == [secret["id"]]
        by_http = system.get(reader, f"/api/v1/issues/{secret['id']}").json()
        assert without_the_moment(issue) == without_the_moment(by_http)
        assert history == system.get(reader, f"/api/v1/issues/{secret['id']}/history").json()

    # Need-to-know holds on NATS too: stadgenoot sees the owner, not the content.
    [seen] = ask(system, [("query.stadgenoot.issue", {"issueId": secret["id"]})])
    assert (seen["owner"], seen["contentVisible"], seen["summary"]) == (
        "wijkteam-nieuw-west",
        False,
        None,
    )


def test_refusals_are_answered_like_command_refusals(system: System) -> None:
    missing = f"{BUURT}.issue.nope"
    replies = ask(
        system,
        [
            # An organisation that is not in the organisations file.
            ("query.nobody.issues", {"buurt": BUURT}),
            # One that is, but not active in the buurt.
            ("query.buurtwerk-osdorp.issues", {"buurt": BUURT}),
            # No such issue.
            ("query.woonzorg.issue", {"issueId": missing}),
            ("query.woonzorg.history", {"issueId": missing}),
            # Not JSON; a field missing; a bad status, buurt or asOf; an unknown question.
            ("query.woonzorg.issues", b"{not json"),
            ("query.woonzorg.issues", {"status": "all"}),
            ("query.woonzorg.issues", {"buurt": BUURT, "status": "lost"}),
            ("query.woonzorg.issues", {"buurt": "BU123"}),
            ("query.woonzorg.issues", {"buurt": BUURT, "asOf": "2026-11-20T09:30:00"}),
            ("query.woonzorg.everything", {}),
        ],
    )
    codes = [reply["code"] for reply in replies]
    assert codes == ["forbidden", "forbidden", "not-found", "not-found"] + ["invalid"] * 6
    for reply in replies:
        assert reply["ok"] is False and reply["message"]
        assert set(reply) == {"ok", "code", "message"}

    # The same questions over HTTP get the same codes.
    assert system.get("buurtwerk-osdorp", f"/api/v1/buurten/{BUURT}/issues").json()["code"] == (
        "forbidden"
    )
    assert system.get("woonzorg", f"/api/v1/issues/{missing}").json()["code"] == "not-found"

    # And the organisation's own buurt answers.
    [own] = ask(system, [("query.buurtwerk-osdorp.issues", {"buurt": OTHER_BUURT})])
    assert own["buurt"] == OTHER_BUURT and own["issues"] == []
