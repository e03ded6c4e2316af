"""For browser tests: the real `buurtbeeld up` (as the integration tests run it), Debian's
Chromium driven by Playwright (never a browser Playwright downloads itself), and a
partner publishing with plain nats-py."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from services.embedded_nats import free_port
from tests.integration.buurtbeeld_process import REPO_ROOT, BuurtbeeldUp

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
# Expectations wait this long for a page (a loaded CI machine is slow).
PATIENCE_MS = 20_000


@dataclass(frozen=True)
class Running:
    """A `buurtbeeld up` with the demo organisations and the demo scenario seeded."""

    dashboard_url: str
    nats_url: str
    tokens: dict[str, str]


@pytest.fixture
def system(up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp]) -> Running:
    """`buurtbeeld up` on fresh data, on free NATS and HTTP ports."""
    up = start_up({**up_env, "BUURTBEELD_HTTP_PORT": str(free_port())})
    tokens = up.wait_for("demo.tokens")["tokens"]
    ready = up.wait_for("buurtbeeld.ready")
    assert up.wait_for("demo.seeded")["refused"] == 0
    return Running(dashboard_url=ready["dashboard_url"], nats_url=ready["nats_url"], tokens=tokens)


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: `make test` installs it (apt-get install -y chromium)"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], Page]]:
    """Fresh pages, each in a browser context of its own (its own cookies: one visitor).

    JavaScript errors on any of them fail the test; on a failure each is photographed.
    """
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    errors: list[str] = []

    def make() -> Page:
        context = browser.new_context(locale="nl-NL", viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(PATIENCE_MS)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: _console_error(message, errors))
        pages.append(page)
        return page

    yield make
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for number, page in enumerate(pages, 1):
            page.screenshot(path=ARTIFACTS / f"failure-{request.node.name}-{number}.png")
    for context in contexts:
        context.close()
    assert errors == [], errors


def _console_error(message: ConsoleMessage, errors: list[str]) -> None:
    # A wrong token's answer is a 401 on purpose; Chromium logs every 4xx.
    if message.type == "error" and "status of 401" not in message.text:
        errors.append(f"{message.text} ({message.location.get('url')})")


def shoot(page: Page, name: str) -> None:
    """A screenshot of the whole page, kept as a test artifact."""
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def log_in(page: Page, system: Running, organisation: str) -> None:
    page.goto(system.dashboard_url)
    page.get_by_label("API-token van uw organisatie").fill(system.tokens[organisation])
    page.get_by_role("button", name="Inloggen").click()
    page.get_by_text("Ingelogd als").wait_for()


def publish_signal(nats_url: str, organisation: str, signal: dict[str, Any]) -> None:
    """Publish as a partner does (CONTRACT.md), with plain nats-py, in a thread of its own
    (Playwright's sync API owns this thread's event loop)."""

    async def publish() -> None:
        nc = await nats.connect(nats_url)
        try:
            ack = await nc.jetstream().publish(
                f"intake.{organisation}.signals",
                json.dumps(signal).encode(),
                headers={"Nats-Msg-Id": f"{organisation}/{signal['signalRef']}"},
            )
            assert ack.stream == "INTAKE" and not ack.duplicate
        finally:
            await nc.close()

    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(publish())
        except BaseException as e:
            failure.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "publishing the signal took more than a minute"
    if failure:
        raise failure[0]
