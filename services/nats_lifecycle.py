"""NATS for a running Buurtbeeld: where the server is, and the connection to it.

Both are async context managers, so the composition root stops them in
reverse order: first the connection is drained, then an embedded server is
shut down.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
import structlog
from nats.aio.client import Client as NATS

from services.concurrency import in_thread_to_the_end
from services.embedded_nats import EmbeddedNats, EmbeddedNatsError
from services.settings import Settings, port_is_free, redact_credentials

log = structlog.get_logger(__name__)

# Recovering a large JetStream store can take a while before the server listens.
EMBEDDED_NATS_STARTUP_TIMEOUT = 60.0


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
        await in_thread_to_the_end(server.start)
        assert server.process is not None
        log.info(
            "nats.embedded.started",
            url=server.url,
            pid=server.process.pid,
            store_dir=str(server.store_dir),
            config=str(server.config_path),
            log=str(server.log_path),
        )
        # For other commands (`buurtbeeld signal`) to find a server on a free port.
        settings.embedded_nats_url_file.write_text(server.url + "\n")
        yield server.url
    finally:
        settings.embedded_nats_url_file.unlink(missing_ok=True)
        await in_thread_to_the_end(server.stop)
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


def _connected_url(nc: NATS) -> str | None:
    url = nc.connected_url
    return redact_credentials(url.geturl()) if url is not None else None
