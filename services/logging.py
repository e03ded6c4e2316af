"""One logging configuration for every Buurtbeeld process.

structlog renders everything, including records from libraries that use the
standard `logging` module (nats-py, FastStream, eventsourcing): readable
columns on a terminal, one JSON object per line otherwise. Lines go to stderr,
so that stdout stays free for what a command prints. Tracebacks never show
the frames' local variables (structlog's default): personal data and tokens
pass through them.
"""

from __future__ import annotations

import importlib.util
import logging
import sys

import structlog
from structlog.typing import ExceptionRenderer, Processor

from services.settings import Settings

_HANDLER_NAME = "buurtbeeld"


def _console_traceback() -> ExceptionRenderer:
    """Tracebacks without the frames' local variables: those hold signals (reporters'
    names and phone numbers), tokens and rows, which have no place in a log."""
    if importlib.util.find_spec("rich") is not None:
        return structlog.dev.RichTracebackFormatter(show_locals=False)
    return structlog.dev.plain_traceback


def configure_logging(settings: Settings) -> None:
    """Set up structlog and route stdlib logging through it; calling it again is harmless."""
    level = logging.getLevelName(settings.log_level)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    rendering: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if settings.log_format == "console":
        # Colours only where a person reads them, even when console output is forced.
        rendering.append(
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=_console_traceback()
            )
        )
    else:
        rendering += [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ]

    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=rendering)
    )
    root = logging.getLogger()
    # Replace the handler of an earlier call rather than adding a second one.
    for previous in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level)
