"""The composition root: what `buurtbeeld up` runs, in which order.

Each component is an async context manager entered on one exit stack, so they
stop in reverse order of starting, also when starting fails halfway: NATS, its
streams, the event store, the coordination service (intake, commands,
escalation), the projections, the NATS queries and the HTTP server (API and
dashboard). New services join `_start` the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import nats
import structlog
from nats.aio.client import Client as NATS

from projections.feeds import Feed, JetStreamFeed, RecorderFeed
from projections.queries import PictureQueries
from projections.service import Projections, projection_service
from projections.store import open_view_store
from projections.visibility import Visibility
from services.concurrency import in_thread_to_the_end, unless_stopped
from services.coordination.application import Coordination
from services.coordination.index_snapshot import IndexSnapshots
from services.coordination.service import coordination_service
from services.dashboard import dashboard_routes
from services.demo import seed_demo
from services.gc_pauses import freeze_start_up, long_collections_logged
from services.http.context import HttpContext
from services.http.server import bind_http_socket, http_server
from services.nats_lifecycle import nats_connection, nats_server
from services.queries import query_service
from services.registries import Registries, load_registries
from services.settings import JETSTREAM, POSTGRES, SQLITE, Settings, redact_credentials
from services.streams import ensure_intake_stream

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Running:
    """Where the started system can be reached."""

    nats_url: str
    streams: tuple[str, ...]
    http_url: str
    # On the first start with demo organisations: who to log in as, and its token.
    demo_login: tuple[str, str] | None = None

    @property
    def dashboard_url(self) -> str:
        return f"{self.http_url}/"


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
    async with long_collections_logged():
        await _run(settings, stop)
    log.info("buurtbeeld.stopped")


async def _run(settings: Settings, stop: asyncio.Event) -> None:
    async with AsyncExitStack() as components:
        running = await unless_stopped(stop, _start(components, settings))
        if running is not None:
            freeze_start_up()
            log.info(
                "buurtbeeld.ready",
                nats_url=redact_credentials(running.nats_url),
                data_dir=str(settings.data_dir),
                streams=list(running.streams),
                persistence_module=settings.persistence_module,
                http_url=running.http_url,
                dashboard_url=running.dashboard_url,
            )
            if running.demo_login is not None:
                organisation, token = running.demo_login
                # A warning, as `demo.tokens`: it shows at any log level below error.
                log.warning(
                    "demo.log_in",
                    dashboard_url=running.dashboard_url,
                    organisation=organisation,
                    token=token,
                    note="open the dashboard and log in with this token (shown only this once)",
                )
            await stop.wait()


async def _start(components: AsyncExitStack, settings: Settings) -> Running:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log.info("buurtbeeld.data", path=str(settings.data_dir))
    registries = load_registries(settings)
    log_registries(registries)
    # Bound first: a taken HTTP port fails the start before anything else runs.
    http_socket = bind_http_socket(settings.http_host, settings.http_port)
    components.callback(http_socket.close)
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
    coordination = await components.enter_async_context(
        coordination_service(
            nats_url=nats_url,
            eventsourcing_env=settings.eventsourcing_env(nats_url),
            registries=registries,
            escalation_interval=settings.escalation_interval,
            nats_timeout=settings.nats_timeout,
            index_snapshots=IndexSnapshots(settings.index_snapshot_path),
        )
    )
    projections = await components.enter_async_context(
        start_projections(settings, nc, nats_url, coordination, registries)
    )
    await components.enter_async_context(
        query_service(nc, projections.answers, registries.organisations)
    )
    context = HttpContext(projections=projections, coordination=coordination, registries=registries)
    stopping = asyncio.Event()  # ends the dashboard's live streams when the server stops
    http_url = await components.enter_async_context(
        http_server(
            settings,
            context,
            extra_routes=dashboard_routes(context, stopping=stopping),
            sock=http_socket,
            stopping=stopping,
        )
    )
    if registries.demo_tokens:
        await seed_demo_scenario(nc)
    return Running(
        nats_url=nats_url,
        streams=tuple(s.config.name or "" for s in streams),
        http_url=http_url,
        demo_login=_demo_login(registries),
    )


# The dashboard is for wijkteam coordinators: the demo logs in as the wijkteam.
DEMO_LOGIN = "wijkteam-nieuw-west"


def _demo_login(registries: Registries) -> tuple[str, str] | None:
    tokens = registries.demo_tokens
    if not tokens:
        return None
    organisation = DEMO_LOGIN if DEMO_LOGIN in tokens else sorted(tokens)[0]
    return organisation, tokens[organisation]


@asynccontextmanager
async def start_projections(
    settings: Settings,
    nc: NATS,
    nats_url: str,
    coordination: Coordination,
    registries: Registries,
) -> AsyncIterator[Projections]:
    """The live picture, read from the event log the coordination writes: the runner
    on a thread and NATS connection of its own, the questions on `nc`."""
    store = await in_thread_to_the_end(
        open_view_store, settings.views_url, settings.sqlite_views_path
    )
    recorder = coordination.recorder

    def buurt_feed(buurt: str) -> Feed:
        if settings.persistence_module == JETSTREAM:
            return JetStreamFeed(nc, buurt=buurt, timeout=settings.nats_timeout)
        return RecorderFeed(recorder, buurt=buurt)

    def issue_events(issue_id: str) -> list[tuple[str, int, bytes]]:
        return [(e.topic, e.originator_version, e.state) for e in recorder.select_events(issue_id)]

    queries = PictureQueries(
        store,
        Visibility(registries.categories),
        buurt_feed=buurt_feed,
        issue_events=issue_events,
        unseal=coordination.personal_data.unseal,
    )

    @asynccontextmanager
    async def open_feed() -> AsyncIterator[Feed]:
        """The runner's feed, opened on its own thread's loop (so its own NATS connection)."""
        if settings.persistence_module != JETSTREAM:
            yield RecorderFeed(recorder)
            return
        own = await nats.connect(
            servers=nats_url.split(","),
            name="buurtbeeld-projection",
            connect_timeout=max(1, round(settings.nats_timeout)),
            max_reconnect_attempts=-1,
        )
        try:
            yield JetStreamFeed(own, timeout=settings.nats_timeout)
        finally:
            with contextlib.suppress(Exception):
                await own.drain()

    log.info("views.ready", where=store.where)
    async with projection_service(store=store, open_feed=open_feed, queries=queries) as projections:
        yield projections


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
