"""The `buurtbeeld` command.

A thin layer: it parses the command line, reads the settings, sets up
logging and hands over to the composition root in `services.app`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from uuid import uuid4

import structlog
from nats.aio.client import Client as NATS

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
    add_signal_command(commands)
    seed = commands.add_parser(
        "seed-demo",
        help="publish the demo scenario as the partners would",
        description=(
            "Publish the demo scenario (a residential complex in Geuzenveld: caretaker, "
            "residents, handhaving and wijkteam signals, claims and handovers) on the "
            "partner subjects of a running `buurtbeeld up`. Seeding twice changes nothing."
        ),
    )
    seed.set_defaults(command_handler=seed_demo_command)
    add_projections_command(commands)
    asyncapi = commands.add_parser(
        "asyncapi",
        help="print the AsyncAPI document of the NATS interface",
        description=(
            "Print the AsyncAPI document of the NATS interface (intake, rejections, "
            "commands, queries, events), generated from the service's declarations; "
            "with --write, write it to docs/asyncapi.json instead."
        ),
    )
    asyncapi.add_argument("--write", metavar="PATH", nargs="?", const="docs/asyncapi.json")
    asyncapi.set_defaults(command_handler=asyncapi_command)
    return parser


def asyncapi_command(args: argparse.Namespace) -> int:
    """`buurtbeeld asyncapi`: the NATS interface's AsyncAPI document."""
    from pathlib import Path

    from services.coordination import asyncapi

    if args.write:
        print(asyncapi.write(Path(args.write)), file=sys.stderr)
    else:
        sys.stdout.write(asyncapi.render())
    return EXIT_OK


def add_projections_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    projections = commands.add_parser(
        "projections", help="look after the picture's views", description="The picture's views."
    )
    actions = projections.add_subparsers(title="actions", required=True, metavar="ACTION")
    rebuild = actions.add_parser(
        "rebuild",
        help="replay the whole event log into fresh views, then switch over",
        description=(
            "Replay the whole event log into a fresh generation of the views "
            "(BUURTBEELD_VIEWS_URL, or views.sqlite in BUURTBEELD_DATA), showing progress "
            "and events/s, then make it live in one step. A running `buurtbeeld up` keeps "
            "answering from the old views meanwhile and follows the new ones after."
        ),
    )
    rebuild.set_defaults(command_handler=rebuild_projections_command)


def rebuild_projections_command(args: argparse.Namespace) -> int:
    """`buurtbeeld projections rebuild`: fresh views from the whole log, switched in at once."""
    from projections.rebuild import ProgressBar, rebuild
    from projections.store import open_view_store
    from services.settings import JETSTREAM

    found = _partner_nats()
    if isinstance(found, int):
        return found
    settings, url = found
    bar = ProgressBar()

    async def replay(nc: NATS) -> None:
        from projections.feeds import Feed, JetStreamFeed, RecorderFeed

        store = await asyncio.to_thread(
            open_view_store, settings.views_url, settings.sqlite_views_path
        )
        try:
            feed: Feed
            if settings.persistence_module == JETSTREAM:
                feed = JetStreamFeed(nc, timeout=settings.nats_timeout)
            else:
                from eventsourcing.persistence import InfrastructureFactory

                env = settings.eventsourcing_env(url)
                recorder = InfrastructureFactory.construct(env).application_recorder()
                feed = RecorderFeed(recorder)
            print(f"rebuilding the views in {store.where}", file=sys.stderr)
            done = await rebuild(store, feed, on_progress=bar)
        finally:
            bar.close()
            await asyncio.to_thread(store.close)
        print(
            json.dumps(
                {
                    "generation": done.generation,
                    "replaced": done.replaced,
                    "events": done.events,
                    "issueEvents": done.applied,
                    "position": done.position,
                    "seconds": round(done.seconds, 3),
                    "eventsPerSecond": round(done.events_per_second),
                }
            )
        )

    return _run_as_partner(url, settings, replay, failure="rebuild failed")


def add_signal_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    signal = commands.add_parser(
        "signal",
        help="publish a signal as a partner system would",
        description=(
            "Publish one signal on intake.<org>.signals (stream INTAKE) with "
            "Nats-Msg-Id <org>/<signalRef>, exactly as CONTRACT.md says. NATS is "
            "NATS_URL, or the embedded server of a running `buurtbeeld up`."
        ),
    )
    signal.add_argument("--org", required=True, help="the publishing organisation's id")
    signal.add_argument("--buurt", required=True, help="CBS buurt code, e.g. BU0363FF03")
    signal.add_argument("--category", required=True, help="category code, e.g. grof-vuil")
    signal.add_argument("--summary", required=True, help="what was observed (max 500 chars)")
    signal.add_argument("--ref", help="the partner's own reference (default: a new one)")
    signal.add_argument("--location-key", help="signals with the same key are one issue")
    signal.add_argument("--address")
    signal.add_argument(
        "--observed-at", help="ISO 8601 with offset (default: now)", type=_aware_datetime
    )
    signal.set_defaults(command_handler=publish_signal_command)


def _aware_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset")
    return moment


def publish_signal_command(args: argparse.Namespace) -> int:
    """`buurtbeeld signal`: publish one signal and print where INTAKE stored it."""
    import msgspec

    from events.contract import Location, Signal
    from services.partner import publish_signal

    found = _partner_nats()
    if isinstance(found, int):
        return found
    settings, url = found
    try:
        signal = Signal(
            signal_ref=args.ref or f"cli-{uuid4().hex[:12]}",
            buurt=args.buurt,
            category=args.category,
            summary=args.summary,
            observed_at=args.observed_at or datetime.now(UTC),
            location=(
                Location(key=args.location_key, address=args.address)
                if args.location_key or args.address
                else None
            ),
        )
        # Validate as the service will: the same decoder partners' bodies meet.
        signal = msgspec.json.decode(msgspec.json.encode(signal), type=Signal)
    except msgspec.ValidationError as e:
        print(f"buurtbeeld: invalid signal: {e}", file=sys.stderr)
        return EXIT_BAD_CONFIGURATION

    async def publish(nc: NATS) -> None:
        published = await publish_signal(nc, args.org, signal, timeout=settings.nats_timeout)
        stored = {
            "signalRef": signal.signal_ref,
            "stream": published.stream,
            "sequence": published.sequence,
            "duplicate": published.duplicate,
        }
        print(json.dumps(stored))

    return _run_as_partner(url, settings, publish, failure="could not publish")


def seed_demo_command(args: argparse.Namespace) -> int:
    """`buurtbeeld seed-demo`: the demo scenario, published as partners do."""
    from services.demo import seed_demo

    found = _partner_nats()
    if isinstance(found, int):
        return found
    settings, url = found

    async def seed(nc: NATS) -> None:
        report = await seed_demo(nc)
        print(
            f"{report.published} signals published ({report.duplicates} already there), "
            f"{len(set(report.issues.values()))} issues"
        )
        for reply in report.replies:
            print(json.dumps(reply))

    return _run_as_partner(url, settings, seed, failure="seeding failed")


def _partner_nats() -> tuple[Settings, str] | int:
    """The settings and NATS URL for a partner command, or the exit status after saying why.

    NATS is NATS_URL, else the embedded server of a running `buurtbeeld up`.
    """
    try:
        settings = Settings.from_environ()
    except SettingsError as e:
        print(f"buurtbeeld: invalid configuration: {'; '.join(e.problems)}", file=sys.stderr)
        return EXIT_BAD_CONFIGURATION
    if settings.nats_url:
        return settings, settings.nats_url
    path = settings.embedded_nats_url_file
    if path.exists():
        return settings, path.read_text().strip()
    print(
        f"buurtbeeld: no NATS: set NATS_URL, or start `buurtbeeld up` (it writes {path})",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _run_as_partner(
    url: str, settings: Settings, work: Callable[[NATS], Awaitable[None]], failure: str
) -> int:
    """Connect to NATS at `url`, do `work`, disconnect; exit status 0, or 1 after saying why."""
    import nats

    async def connected() -> None:
        nc = await nats.connect(url.split(","), connect_timeout=settings.nats_timeout)
        try:
            await work(nc)
        finally:
            await nc.close()

    try:
        asyncio.run(connected())
    except Exception as e:
        print(f"buurtbeeld: {failure}: {e!r}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def up(args: argparse.Namespace) -> int:
    """`buurtbeeld up`: run until signalled."""
    # Imported here: the composition root pulls in every service.
    from services.app import serve
    from services.malloc_arenas import use_few_malloc_arenas

    use_few_malloc_arenas()  # before any thread starts

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
