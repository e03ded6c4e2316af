"""Browser tests: fixtures from tests/browser/browser_support.py and tests/integration."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.browser_support import browser, new_page, system
from tests.integration.buurtbeeld_process import start_up, up_env

__all__ = ["browser", "new_page", "start_up", "system", "up_env"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, for the fixtures' failure screenshots."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
