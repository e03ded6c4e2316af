"""The composition root: what `buurtbeeld up` runs, in which order.

Each component is an async context manager entered on one exit stack, so they
stop in reverse order of starting, also when starting fails halfway. New
services (coordination, intake, HTTP) join `_start` the same way.
"""

from __future__ import annotations

import asyncio
import math
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
import structlog
from nats.aio.client import Client as NATS

from services.embedded_nats import EmbeddedNats, EmbeddedNatsError
from services.settings import (
    JETSTREAM,
    POSTGRES,
    SQLITE,
    Settings,
    port_is_free,
    redact_credentials,
)
from services.streams import ensure_intake_stream

T = TypeVar("T")

log = structlog.get_logger(__name__)

# Recovering a large JetStream store can take a while before the server listens.
EMBEDDED_NATS_STARTUP_TIMEOUT = 60.0


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
        running = await _unless_stopped(stop, _start(components, settings))
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
    return Running(nats_url=nats_url, streams=tuple(s.config.name or "" for s in streams))


@asynccontextmanager
async def nats_server(settings: Settings) -> AsyncIterator[str]:
    """Where NATS is: `NATS_URL` as given, or an embedded nats-server started here."""
    if not settings.uses_embedded_nats:
        assert settings.nats_url is not None
        log.info("nats.external", url=redact_credentials(settings.nats_url))
        yield settings.nats_url
        return
    if settings.nats_port and not port_is_free(settings.nats_port):
        # Checked here because the server's own start would mistake the other listener for itself.
        raise EmbeddedNatsError(
            f"cannot start nats-server: 127.0.0.1:{settings.nats_port} is in use; "
            "set BUURTBEELD_NATS_PORT to a free port, or leave it unset to get one"
        )
    server = EmbeddedNats(
        data_dir=settings.embedded_nats_dir,
        port=settings.nats_port,
        startup_timeout=EMBEDDED_NATS_STARTUP_TIMEOUT,
    )
    try:
        await _to_thread_to_the_end(server.start)
        assert server.process is not None
        log.info(
            "nats.embedded.started",
            url=server.url,
            pid=server.process.pid,
            store_dir=str(server.store_dir),
            config=str(server.config_path),
            log=str(server.log_path),
        )
        yield server.url
    finally:
        await _to_thread_to_the_end(server.stop)
        if server.process is not None:
            log.info("nats.embedded.stopped", exit_code=server.process.returncode)


@asynccontextmanager
async def nats_connection(nats_url: str, settings: Settings) -> AsyncIterator[NATS]:
    """A connection that keeps reconnecting, drained on the way out."""
    closing = False

    async def on_error(error: Exception) -> None:
        log.warning("nats.error", error=str(error) or type(error).__name__)

    async def on_disconnected() -> None:
        if not closing:
            log.warning("nats.disconnected")

    async def on_reconnected() -> None:
        log.info("nats.reconnected", url=_connected_url(nc))

    nc = await nats.connect(
        servers=nats_url.split(","),
        name="buurtbeeld",
        connect_timeout=max(1, math.ceil(settings.nats_timeout)),
        # A cluster that is still starting, or restarting node by node, is waited for.
        max_reconnect_attempts=-1,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
    )
    version = nc.connected_server_version
    log.info(
        "nats.connected",
        url=_connected_url(nc),
        server_version=f"{version.major}.{version.minor}.{version.patch}",
    )
    try:
        yield nc
    finally:
        closing = True
        if nc.is_connected:
            await nc.drain()
        else:
            await nc.close()


async def prepare_event_store(nats_url: str, settings: Settings) -> None:
    """Make sure the configured event store can be written, and say where it is."""
    module = settings.persistence_module
    if module == JETSTREAM:
        # Imported here: only this persistence module needs it.
        from events.jetstream import ensure_streams

        await _to_thread_to_the_end(ensure_streams, settings.eventsourcing_env(nats_url))
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


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, T]) -> T | None:
    """The result of `work`, or None when `stop` was set first (then `work` is cancelled)."""
    working = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if working.done():
        return working.result()
    working.cancel()
    with suppress(asyncio.CancelledError):
        await working
    return None


async def _to_thread_to_the_end(func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` in a worker thread; when cancelled, still wait for it to return.

    A thread cannot be interrupted: if the caller gave up early, what the
    call started (a nats-server process) would escape the cleanup.
    """
    call = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        await asyncio.wait({call})
        raise


def _connected_url(nc: NATS) -> str | None:
    url = nc.connected_url
    return redact_credentials(url.geturl()) if url is not None else None
