"""The `buurtbeeld` command.

A thin layer: it parses the command line, reads the settings, sets up
logging and hands over to the composition root in `services.app`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import structlog

from services.embedded_nats import EmbeddedNatsError
from services.logging import configure_logging
from services.registries import RegistryError
from services.settings import Settings, SettingsError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIGURATION = 2

# Named, not __name__: under `python -m` that would be "__main__".
log = structlog.get_logger("services.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: this process's); returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.command_handler(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buurtbeeld",
        description="One shared picture of a neighbourhood: signals, issues and who owns them.",
        epilog="Configuration comes from environment variables; see README.md.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    up_parser = commands.add_parser(
        "up",
        help="run the whole system until SIGINT or SIGTERM",
        description=(
            "Run the whole system in one process tree: an embedded nats-server unless "
            "NATS_URL is set, the INTAKE and EVENTS streams, and the services. "
            "Stops cleanly on SIGINT (Ctrl-C) or SIGTERM."
        ),
    )
    up_parser.set_defaults(command_handler=up)
    return parser


def up(args: argparse.Namespace) -> int:
    """`buurtbeeld up`: run until signalled."""
    # Imported here: the composition root pulls in every service.
    from services.app import serve

    try:
        settings = Settings.from_environ()
    except SettingsError as e:
        problems = "".join(f"\n  {problem}" for problem in e.problems)
        print(f"buurtbeeld: invalid configuration:{problems}", file=sys.stderr)
        return EXIT_BAD_CONFIGURATION
    configure_logging(settings)
    try:
        asyncio.run(serve(settings))
    except EmbeddedNatsError as e:
        log.error("buurtbeeld.failed", error=str(e))
        return EXIT_FAILED
    except RegistryError as e:
        log.error("buurtbeeld.failed", error=str(e), problems=e.problems)
        return EXIT_BAD_CONFIGURATION
    except Exception:
        log.exception("buurtbeeld.failed")
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
