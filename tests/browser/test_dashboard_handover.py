"""Two organisations in two browsers: a handover offered, accepted and resolved, each side
seeing the other's step arrive on its open issue page without reloading."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.browser_support import Running, log_in, shoot

CONTAINERS = "Grof vuil naast de containers bij portiek 12: bank en matrassen"


def open_issue(page: Page, summary: str) -> None:
    page.get_by_role("link", name="Dijkgraafplein e.o.").click()
    page.get_by_role("link", name=summary).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(summary)
    expect(page.locator("#zaak")).to_have_attribute("data-live-connected", "true")


def test_a_handover_between_two_organisations_live_on_both_pages(
    system: Running, new_page: Callable[[], Page]
) -> None:
    # Woonzorg owns the containers issue; the gemeente looks at it too, each in a browser.
    woonzorg, gemeente = new_page(), new_page()
    log_in(woonzorg, system, "woonzorg")
    log_in(gemeente, system, "gemeente-amsterdam")
    open_issue(woonzorg, CONTAINERS)
    open_issue(gemeente, CONTAINERS)
    expect(gemeente.locator(".actions")).to_contain_text(
        "Deze zaak is in handen van Woonzorg Nederland"
    )
    gemeente.evaluate("window.neverReloaded = true")

    # Woonzorg proposes to hand it over to the gemeente.
    woonzorg.get_by_label("Overdragen aan").select_option(label="Gemeente Amsterdam")
    woonzorg.get_by_role("button", name="Overdracht voorstellen").click()
    expect(woonzorg.get_by_role("status").first).to_contain_text("De overdracht is voorgesteld")
    expect(woonzorg.locator("dd.owner")).to_contain_text(
        "Overdracht voorgesteld aan Gemeente Amsterdam"
    )

    # The gemeente's open page offers to accept it, by itself.
    accept = gemeente.get_by_role("button", name="Overdracht accepteren")
    expect(accept).to_be_visible()
    assert gemeente.evaluate("window.neverReloaded") is True
    shoot(gemeente, "05-handover-offered")
    accept.click()
    expect(gemeente.locator("dd.owner")).to_contain_text("Gemeente Amsterdam")
    expect(gemeente.locator(".timeline")).to_contain_text(
        "Gemeente Amsterdam heeft de overdracht geaccepteerd en is eigenaar "
        "(was Woonzorg Nederland)"
    )

    # Woonzorg's page shows the new owner without a reload, and no longer offers to act.
    woonzorg.evaluate("window.neverReloaded = true")
    expect(woonzorg.locator("dd.owner")).to_contain_text("Gemeente Amsterdam")
    expect(woonzorg.get_by_role("button", name="Overdracht voorstellen")).to_have_count(0)

    # The gemeente resolves it, saying how; Woonzorg sees it resolved, with the words.
    gemeente.get_by_label("Hoe is de zaak opgelost?").fill("Bank en matrassen opgehaald")
    gemeente.get_by_role("button", name="Zaak oplossen").click()
    expect(gemeente.get_by_role("status").first).to_contain_text("De zaak is opgelost.")
    expect(woonzorg.locator(".facts")).to_contain_text("Opgelost")
    expect(woonzorg.locator(".timeline")).to_contain_text("Bank en matrassen opgehaald")
    expect(woonzorg.get_by_role("button", name="Zaak heropenen")).to_be_visible()
    assert woonzorg.evaluate("window.neverReloaded") is True
    shoot(woonzorg, "06-resolved-seen-by-previous-owner")

    # Gone from the open picture: the buurt page lists it only under "Alles, ook afgesloten".
    woonzorg.get_by_role("link", name="Terug naar Dijkgraafplein e.o.").click()
    expect(woonzorg.locator("tr.issue", has_text=CONTAINERS)).to_have_count(0)
    woonzorg.get_by_label("Status").select_option(label="Alles, ook afgesloten")
    woonzorg.get_by_role("button", name="Toon").click()
    expect(woonzorg.locator("tr.issue", has_text=CONTAINERS)).to_contain_text("Opgelost")
