"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright.

A coordinator of Gemeente Amsterdam logs in with the organisation's demo token,
sees the seeded Dijkgraafplein picture (need-to-know included), claims the
unowned issue, and watches a signal another organisation publishes on NATS
appear without reloading the page. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from services.dashboard.wording import LOCAL_TIME
from tests.browser.browser_support import Running, publish_signal, shoot

BUURT = "BU0363FD02"
COORDINATOR = "gemeente-amsterdam"
# "Within a second" on a quiet machine; this bound leaves room for a busy CI runner.
LIVE_WITHIN_MS = 5_000


def test_a_coordinator_sees_the_picture_claims_an_issue_and_watches_a_new_signal_arrive(
    system: Running, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    # The dashboard sends a visitor without a session to the log-in page.
    page.goto(system.dashboard_url)
    expect(page).to_have_url(re.compile(r"/inloggen"))
    expect(page.get_by_role("heading", name="Inloggen")).to_be_visible()

    # A wrong token is refused, in Dutch.
    page.get_by_label("API-token van uw organisatie").fill("geen-echte-token")
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_role("alert")).to_contain_text("Deze token kennen we niet")

    # Gemeente Amsterdam's coordinator logs in with the organisation's token.
    page.get_by_label("API-token van uw organisatie").fill(system.tokens[COORDINATOR])
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_text("Ingelogd als")).to_contain_text("Gemeente Amsterdam")
    shoot(page, "01-buurten")

    # She chooses the Dijkgraafplein buurt.
    page.get_by_role("link", name="Dijkgraafplein e.o.").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dijkgraafplein e.o.")

    # The seeded picture: five open issues (the portiek lighting is resolved), the
    # unowned swing first, owners shown, and the eenzaamheid issue's content hidden
    # from the gemeente (need-to-know).
    issues = page.locator("tr.issue")
    expect(issues).to_have_count(5)
    swing = issues.first
    expect(swing).to_contain_text("Schommel in de speeltuin achter het complex is kapot")
    expect(swing).to_contain_text("geen eigenaar")
    containers = issues.filter(has_text="Grof vuil naast de containers bij portiek 12")
    expect(containers).to_contain_text("Woonzorg Nederland")
    expect(containers.locator("td").nth(5)).to_have_text("3")  # three signals, one issue
    expect(issues.filter(has_text="Handhaving stadsdeel Nieuw-West")).to_contain_text("Overlast")
    hidden = issues.filter(has_text="vertrouwelijk — inhoud niet zichtbaar")
    expect(hidden).to_have_count(1)  # eenzaamheid: the gemeente sees only its group
    expect(hidden).to_contain_text("Sociaal")
    expect(hidden).to_contain_text("Wijkteam Nieuw-West")
    debts = issues.filter(has_text="Huishouden met achterstand in huur en energie")
    expect(debts).to_contain_text("overdracht voorgesteld aan Buurtwerk Nieuw-West")
    expect(page.locator(".status-counts")).to_contain_text("1 Geen eigenaar")
    shoot(page, "02-buurt-seeded")
    seeded = datetime.now(LOCAL_TIME).replace(microsecond=0, tzinfo=None)

    # She opens the swing's issue: its timeline says who reported it.
    swing.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Schommel in de speeltuin")
    expect(page.locator(".timeline")).to_contain_text(
        "Zaak geopend door een melding van Buurtwerk Nieuw-West"
    )

    # She claims it: the gemeente owns it now, and the timeline says so.
    page.get_by_role("button", name="Zaak oppakken").click()
    expect(page.get_by_role("status").first).to_contain_text("U hebt de zaak opgepakt")
    expect(page.locator("dd.owner")).to_contain_text("Gemeente Amsterdam")
    expect(page.locator(".timeline")).to_contain_text("Gemeente Amsterdam heeft de zaak opgepakt")
    shoot(page, "03-issue-claimed")

    # Back in the buurt, the swing is hers, and nothing is unowned any more.
    page.get_by_role("link", name="Terug naar Dijkgraafplein e.o.").click()
    swing = page.locator("tr.issue", has_text="Schommel in de speeltuin")
    expect(swing).to_contain_text("Gemeente Amsterdam")
    expect(swing).to_contain_text("mijn zaak")
    expect(page.locator(".status-counts")).not_to_contain_text("Geen eigenaar")

    # The page listens for changes; we mark it to prove that it is never reloaded.
    expect(page.locator("#beeld")).to_have_attribute("data-live-connected", "true")
    page.evaluate("window.neverReloaded = true")

    # Another organisation, Woonzorg, publishes a new signal with plain nats-py ...
    summary = "Graffiti op de gevel van portiek 14, net opnieuw gespoten"
    signal = {
        "signalRef": f"browser-test-{time.time_ns()}",
        "buurt": BUURT,
        "category": "verloedering",
        "summary": summary,
        "observedAt": datetime.now(UTC).isoformat(),
        "location": {"key": "dijkgraafplein-14-gevel", "address": "Dijkgraafplein 14"},
    }
    published = time.monotonic()
    publish_signal(system.nats_url, "woonzorg", signal)

    # ... and it appears on her page by itself, unowned, at the top.
    new_issue = page.locator("tr.issue", has_text=summary)
    expect(new_issue).to_be_visible(timeout=LIVE_WITHIN_MS)
    seen_after = time.monotonic() - published
    expect(new_issue).to_contain_text("geen eigenaar")
    expect(page.locator("tr.issue").first).to_contain_text(summary)
    expect(page.locator("tr.issue")).to_have_count(6)
    assert page.evaluate("window.neverReloaded") is True
    expect(page.locator("#live-status")).to_contain_text("Bijgewerkt")
    shoot(page, "04-buurt-live-signal")
    print(f"new signal visible after {seen_after:.2f}s")

    # Looking back: the picture as it was before she claimed the swing, to read only.
    page.get_by_label("Zoals het was op").fill(seeded.isoformat())
    page.get_by_role("button", name="Toon").click()
    expect(page.locator(".past")).to_contain_text("Dit is het beeld zoals het was op")
    expect(page.locator("tr.issue")).to_have_count(5)
    swing = page.locator("tr.issue", has_text="Schommel in de speeltuin")
    expect(swing).to_contain_text("geen eigenaar")
    expect(page.get_by_role("button", name=re.compile("Oppakken"))).to_have_count(0)
    shoot(page, "05-buurt-as-it-was")
