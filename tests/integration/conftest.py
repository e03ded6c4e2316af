"""Fixtures for integration tests that run `buurtbeeld` as a real process."""

from tests.integration.buurtbeeld_process import start_up, up_env
from tests.integration.system_support import system

__all__ = ["start_up", "system", "up_env"]
