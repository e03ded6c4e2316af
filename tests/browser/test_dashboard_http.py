"""The dashboard over plain HTTP, as a browser (or an attacker's page) would send it:
sessions, where forms may come from, refusals in Dutch, need-to-know on every page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx

from services.dashboard.wording import LOCAL_TIME
from tests.browser.browser_support import Running

BUURT = "BU0363FD02"
HIDDEN = "vertrouwelijk — inhoud niet zichtbaar"
LONELY = "Oudere bewoner doet niet meer open"


def client(system: Running) -> httpx.Client:
    return httpx.Client(base_url=system.dashboard_url, timeout=30)


@contextmanager
def logged_in(system: Running, organisation: str) -> Iterator[httpx.Client]:
    with client(system) as browser:
        answer = browser.post("/inloggen", data={"token": system.tokens[organisation]})
        assert answer.status_code == 303, answer.text
        yield browser


def form_token(page: str) -> str:
    found = re.search(r'name="formulier" value="([^"]+)"', page)
    assert found is not None, "no form token on the page"
    return found.group(1)


def issue_ids(page: str) -> dict[str, str]:
    """{summary or the hidden-content note: issue id} of a buurt page's rows."""
    rows = re.findall(r'<a href="/zaken/([^"]+)">(?:<em[^>]*>)?([^<]+)', page)
    return {summary.strip(): issue_id for issue_id, summary in rows}


def first_update(browser: httpx.Client, path: str) -> str:
    """The data of the first event on a page's live stream."""
    data: list[str] = []
    with browser.stream("GET", path) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                data.append(line[len("data: ") :])
            elif line == "" and data:
                return "\n".join(data)
    raise AssertionError(f"{path} ended without an event")


def test_log_in_sets_a_strict_http_only_session_cookie_and_log_out_ends_it(
    system: Running,
) -> None:
    with client(system) as browser:
        # Without a session every page leads to the log-in, remembering where to go.
        answer = browser.get(f"/buurten/{BUURT}")
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/inloggen?volgende=%2Fbuurten%2F{BUURT}"
        assert browser.get(f"/buurten/{BUURT}/live").status_code == 401

        # A wrong token: no cookie, the form again with a Dutch message.
        answer = browser.post("/inloggen", data={"token": "geen-echte-token"})
        assert answer.status_code == 401
        assert "Deze token kennen we niet" in answer.text
        assert "set-cookie" not in answer.headers

        # The right token: a session cookie the page's scripts cannot read, sent only by us.
        answer = browser.post(
            "/inloggen",
            data={"token": system.tokens["woonzorg"], "volgende": f"/buurten/{BUURT}"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/buurten/{BUURT}"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/" in cookie
        assert system.tokens["woonzorg"] not in cookie
        page = browser.get(f"/buurten/{BUURT}")
        assert page.status_code == 200
        assert "Ingelogd als <strong>Woonzorg Nederland</strong>" in page.text
        for header, value in {
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
        }.items():
            assert page.headers[header] == value
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

        # Logging out ends the session on the server, not just in this browser.
        session = browser.cookies["buurtbeeld_sessie"]
        answer = browser.post("/uitloggen", data={"formulier": form_token(page.text)})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/inloggen?uitgelogd=1"
    with client(system) as replayed:
        replayed.cookies.set("buurtbeeld_sessie", session)
        assert replayed.get("/buurten").status_code == 303


def test_log_in_only_sends_you_on_to_this_site(system: Running) -> None:
    with client(system) as browser:
        answer = browser.post(
            "/inloggen",
            data={"token": system.tokens["woonzorg"], "volgende": "https://evil.example/"},
        )
        assert answer.headers["location"] == "/buurten"


def test_forms_from_elsewhere_change_nothing(system: Running) -> None:
    with logged_in(system, "gemeente-amsterdam") as browser:
        page = browser.get(f"/buurten/{BUURT}").text
        swing = issue_ids(page)["Schommel in de speeltuin achter het complex is kapot"]
        # Without the page's form token, or from another site's page: refused.
        assert browser.post(f"/zaken/{swing}/claim", data={}).status_code == 403
        refused = browser.post(
            f"/zaken/{swing}/claim",
            data={"formulier": form_token(page)},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert refused.status_code == 403
        assert "Formulier niet geaccepteerd" in refused.text
        # Nothing changed: the swing is still unowned.
        issue = browser.get(f"/zaken/{swing}").text
        assert "geen eigenaar" in issue
        assert "Zaak oppakken" in issue


def test_a_refused_command_is_explained_in_dutch(system: Running) -> None:
    with logged_in(system, "gemeente-amsterdam") as browser:
        page = browser.get(f"/buurten/{BUURT}").text
        containers = issue_ids(page)[
            "Grof vuil naast de containers bij portiek 12: bank en matrassen"
        ]
        # Claiming what Woonzorg owns: back on the issue page, with the reason why not.
        answer = browser.post(f"/zaken/{containers}/claim", data={"formulier": form_token(page)})
        assert answer.status_code == 303
        assert urlsplit(answer.headers["location"]).path == f"/zaken/{containers}"
        shown = browser.get(answer.headers["location"]).text
        assert "Deze zaak heeft al een eigenaar, of er loopt een overdracht." in shown
        assert "already owned by woonzorg" in shown  # the technical reason, smaller
        # Resolving what it does not own, and a handover without a receiver: refused too.
        answer = browser.post(
            f"/zaken/{containers}/resolve",
            data={"formulier": form_token(page), "resolution": "Opgeruimd"},
        )
        shown = browser.get(answer.headers["location"]).text
        assert "Dat kan alleen de organisatie die eigenaar is van deze zaak." in shown
        answer = browser.post(
            f"/zaken/{containers}/handover", data={"formulier": form_token(page), "to": ""}
        )
        shown = browser.get(answer.headers["location"]).text
        assert "Dat kan niet met deze zaak of deze gegevens." in shown
        # A notice is shown once.
        assert "Dat kan niet met deze zaak" not in browser.get(f"/zaken/{containers}").text


def test_need_to_know_holds_on_every_page(system: Running) -> None:
    # The wijkteam owns the eenzaamheid issue: it sees its words, on the list and the page.
    with logged_in(system, "wijkteam-nieuw-west") as wijkteam:
        rows = issue_ids(wijkteam.get(f"/buurten/{BUURT}").text)
        lonely = next(i for summary, i in rows.items() if summary.startswith(LONELY))
        assert HIDDEN not in rows
        assert LONELY in wijkteam.get(f"/zaken/{lonely}").text
    # A housing corporation that did not report it sees that it exists, who owns it, no words.
    with logged_in(system, "stadgenoot") as corporation:
        page = corporation.get(f"/buurten/{BUURT}").text
        assert issue_ids(page)[HIDDEN] == lonely
        assert LONELY not in page
        issue = corporation.get(f"/zaken/{lonely}").text
        assert LONELY not in issue
        assert "Dijkgraafplein 14-3" not in issue
        assert "hh-dgp-14-3" not in issue
        assert HIDDEN in issue
        assert "Wijkteam Nieuw-West" in issue
        # Its live updates hold no more than its page.
        update = first_update(corporation, f"/zaken/{lonely}/live?sinds=0")
        assert HIDDEN in update
        assert LONELY not in update
    # The residents' portal sees only the issues of its own signals.
    with logged_in(system, "bewonersportaal") as residents:
        page = residents.get(f"/buurten/{BUURT}").text
        assert set(issue_ids(page)) == {
            "Grof vuil naast de containers bij portiek 12: bank en matrassen",
            "Jongeren hangen &#39;s avonds in de portiek, veel lawaai",
        }
        assert residents.get(f"/zaken/{lonely}").status_code == 404


def test_an_organisation_sees_only_the_buurten_it_is_active_in(system: Running) -> None:
    # The Ouder- en Kindteam Osdorp works in six buurten, not in Geuzenveld.
    with logged_in(system, "ouder-kindteam-osdorp") as team:
        buurten = team.get("/buurten").text
        assert buurten.count('<a href="/buurten/BU') == 6
        assert f"/buurten/{BUURT}" not in buurten
        refused = team.get(f"/buurten/{BUURT}")
        assert refused.status_code == 403
        assert "Uw organisatie mag dit niet doen." in refused.text


def test_the_picture_as_it_was_at_a_moment_is_replayed_and_read_only(system: Running) -> None:
    time.sleep(2.1)  # every seeded event two seconds in the past
    moment = datetime.now(LOCAL_TIME).replace(microsecond=0, tzinfo=None) - timedelta(seconds=1)
    with logged_in(system, "gemeente-amsterdam") as browser:
        now = browser.get(f"/buurten/{BUURT}").text
        assert "Oppakken" in now and "data-live=" in now
        then = browser.get(f"/buurten/{BUURT}", params={"peilmoment": moment.isoformat()})
        assert then.status_code == 200
        # A second ago: the same issues, replayed from the log; nothing to do, nothing live.
        assert issue_ids(then.text) == issue_ids(now)
        assert "Dit is het beeld zoals het was op" in then.text
        assert "Oppakken" not in then.text and "data-live=" not in then.text
        # Before the demo happened: nothing yet.
        long_ago = browser.get(f"/buurten/{BUURT}", params={"peilmoment": "2020-01-01T12:00"})
        assert "zoals het was op 1 jan 2020, 12:00" in long_ago.text
        assert issue_ids(long_ago.text) == {}
        # The future, and what is no moment, are refused in Dutch.
        later = (moment + timedelta(days=1)).isoformat()
        for refused in (later, "gisteren"):
            answer = browser.get(f"/buurten/{BUURT}", params={"peilmoment": refused})
            assert answer.status_code == 400
            assert "Beeld niet beschikbaar" in answer.text
    # Looking back keeps need-to-know: the corporation still sees no words of the wijkteam's.
    with logged_in(system, "stadgenoot") as corporation:
        then = corporation.get(f"/buurten/{BUURT}", params={"peilmoment": moment.isoformat()})
        assert HIDDEN in issue_ids(then.text)
        assert LONELY not in then.text
