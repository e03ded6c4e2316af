"""The composition root: what `buurtbeeld up` runs, in which order.

Each component is an async context manager entered on one exit stack, so they
stop in reverse order of starting, also when starting fails halfway: NATS, its
streams, the event store, then the coordination service (intake, commands,
escalation). New services (HTTP) join `_start` the same way.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass

import structlog
from nats.aio.client import Client as NATS

from services.concurrency import in_thread_to_the_end, unless_stopped
from services.coordination.service import coordination_service
from services.demo import seed_demo
from services.nats_lifecycle import nats_connection, nats_server
from services.registries import Registries, load_registries
from services.settings import JETSTREAM, POSTGRES, SQLITE, Settings, redact_credentials
from services.streams import ensure_intake_stream

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Running:
    """Where the started system can be reached."""

    nats_url: str
    streams: tuple[str, ...]


async def serve(settings: Settings) -> None:
    """Run the whole system until SIGINT or SIGTERM, then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop(signal_name: str) -> None:
        if stop.is_set():
            log.info("buurtbeeld.already_stopping", signal=signal_name)
            return
        log.info("buurtbeeld.stopping", signal=signal_name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop, signum.name)
    try:
        await run(settings, stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Start every component, log `buurtbeeld.ready`, and stop them all once `stop` is set.

    A `stop` during start-up abandons the start and stops what already runs.
    """
    async with AsyncExitStack() as components:
        running = await unless_stopped(stop, _start(components, settings))
        if running is not None:
            log.info(
                "buurtbeeld.ready",
                nats_url=redact_credentials(running.nats_url),
                data_dir=str(settings.data_dir),
                streams=list(running.streams),
                persistence_module=settings.persistence_module,
            )
            await stop.wait()
    log.info("buurtbeeld.stopped")


async def _start(components: AsyncExitStack, settings: Settings) -> Running:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log.info("buurtbeeld.data", path=str(settings.data_dir))
    registries = load_registries(settings)
    log_registries(registries)
    nats_url = await components.enter_async_context(nats_server(settings))
    nc = await components.enter_async_context(nats_connection(nats_url, settings))
    await ensure_intake_stream(nc, settings)
    await prepare_event_store(nats_url, settings)
    streams = await nc.jsm(timeout=settings.nats_timeout).streams_info()
    for stream in streams:
        log.info(
            "nats.stream",
            stream=stream.config.name,
            subjects=stream.config.subjects,
            replicas=stream.config.num_replicas,
            max_age_seconds=stream.config.max_age or None,
            messages=stream.state.messages,
        )
    await components.enter_async_context(
        coordination_service(
            nats_url=nats_url,
            eventsourcing_env=settings.eventsourcing_env(nats_url),
            registries=registries,
            escalation_interval=settings.escalation_interval,
            nats_timeout=settings.nats_timeout,
        )
    )
    if registries.demo_tokens:
        await seed_demo_scenario(nc)
    return Running(nats_url=nats_url, streams=tuple(s.config.name or "" for s in streams))


async def seed_demo_scenario(nc: NATS) -> None:
    """First start with demo organisations: publish the demo scenario as partners would
    (CONTRACT.md). A failure is logged, not fatal: `buurtbeeld seed-demo` can repeat it."""
    try:
        report = await seed_demo(nc)
    except Exception as e:
        log.warning("demo.seed_failed", error=repr(e), hint="run `buurtbeeld seed-demo`")
        return
    refused = [r for r in report.replies if not r.get("ok")]
    log.info(
        "demo.seeded",
        signals=report.published,
        issues=len(set(report.issues.values())),
        commands=len(report.replies),
        refused=len(refused),
    )


def log_registries(registries: Registries) -> None:
    """Say what the registries hold and where from; show freshly made demo tokens, once."""
    log.info(
        "registries.loaded",
        organisations=len(registries.organisations),
        organisations_file=registries.organisations_source,
        categories=len(registries.categories),
        categories_source=registries.categories_source,
        buurten=len(registries.buurten),
        buurten_source=registries.buurten_source,
    )
    for organisation, buurten in registries.buurten_of_unknown_organisations().items():
        log.warning("registries.unknown_buurten", organisation=organisation, buurten=buurten)
    if registries.demo_tokens:
        # A warning, so that it shows at any log level below error.
        log.warning(
            "demo.tokens",
            tokens=dict(registries.demo_tokens),
            file=registries.organisations_source,
            note=(
                "demo API tokens, shown only this once: the file keeps only their SHA-256. "
                "Lost them? Delete the file and start again for new ones."
            ),
        )


async def prepare_event_store(nats_url: str, settings: Settings) -> None:
    """Make sure the configured event store can be written, and say where it is."""
    module = settings.persistence_module
    if module == JETSTREAM:
        # Imported here: only this persistence module needs it.
        from events.jetstream import ensure_streams

        await in_thread_to_the_end(ensure_streams, settings.eventsourcing_env(nats_url))
        log.info("event_store.ready", persistence_module=module, where="NATS JetStream")
    elif module == SQLITE:
        log.info(
            "event_store.ready", persistence_module=module, where=str(settings.sqlite_events_path)
        )
    elif module == POSTGRES:
        env = settings.postgres_env
        where = f"{env.get('POSTGRES_HOST')}:{env.get('POSTGRES_PORT', '5432')}"
        dbname = env.get("POSTGRES_DBNAME")
        log.info("event_store.ready", persistence_module=module, where=where, dbname=dbname)
    else:
        log.warning("event_store.ready", persistence_module=module, where="memory, lost on stop")
