"""Logging: one configuration, JSON lines off a terminal, stdlib records included."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from services.logging import configure_logging
from services.settings import Settings


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the process's logging back as it was: configuration is global state."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_structlog_and_stdlib_records_come_out_as_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(data_dir=tmp_path, log_format="json"))

    structlog.get_logger("buurtbeeld.test").info("signal.received", org="woonzorg")
    logging.getLogger("nats.test").warning("server %s is slow", "n1")

    ours, theirs = json_lines(capsys.readouterr().err)
    assert ours["event"] == "signal.received"
    assert ours["org"] == "woonzorg"
    assert ours["level"] == "info"
    assert str(ours["timestamp"]).endswith("Z")
    assert theirs["event"] == "server n1 is slow"
    assert theirs["level"] == "warning"
    assert theirs["logger"] == "nats.test"


def test_records_below_the_configured_level_are_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(data_dir=tmp_path, log_format="json", log_level="WARNING"))

    structlog.get_logger("buurtbeeld.test").info("too.chatty")
    logging.getLogger("nats.test").info("too chatty as well")
    structlog.get_logger("buurtbeeld.test").warning("worth.telling")

    assert [line["event"] for line in json_lines(capsys.readouterr().err)] == ["worth.telling"]


def test_configuring_twice_still_writes_each_line_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path, log_format="json")
    configure_logging(settings)
    configure_logging(settings)

    logging.getLogger("buurtbeeld.test").warning("once")

    assert len(json_lines(capsys.readouterr().err)) == 1


def test_the_console_format_is_readable_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(data_dir=tmp_path, log_format="console"))

    structlog.get_logger("buurtbeeld.test").info("buurtbeeld.ready", port=4222)

    line = capsys.readouterr().err.strip()
    assert "buurtbeeld.ready" in line
    assert "port=4222" in line
    assert not line.startswith("{")


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_logged_exception_shows_no_local_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    configure_logging(Settings(data_dir=tmp_path, log_format=log_format))  # type: ignore[arg-type]

    def process(reporter_phone: str) -> None:
        raise RuntimeError("a fault of ours")

    try:
        process("06" + "12345678")  # as one string only in a local variable
    except RuntimeError:
        structlog.get_logger("buurtbeeld.test").exception("intake.unprocessable")

    logged = capsys.readouterr().err
    assert "a fault of ours" in logged and "process" in logged  # the traceback is there
    assert "0612345678" not in logged
