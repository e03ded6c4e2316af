"""Fixtures for integration tests that run `buurtbeeld` as a real process."""

from tests.integration.buurtbeeld_process import start_up, up_env

__all__ = ["start_up", "up_env"]
