"""The HTTP server inside `buurtbeeld up`: the Litestar app on uvicorn, on the app's event loop.

`build_app` puts together the API (`/api/v1`), its OpenAPI document, a health
check, and whatever else is mounted (the dashboard). `http_server` is an async
context manager, as every component of the composition root: it serves until
the context is left, then stops taking connections and lets the requests in
hand finish. The process's signals stay the composition root's: uvicorn
installs no handlers of its own here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import asynccontextmanager

import msgspec
import structlog
import uvicorn
from litestar import Litestar, get
from litestar.types import ControllerRouterHandler

from services.http.api import VERSION_HEADERS, api_router
from services.http.context import HttpContext
from services.http.openapi import CompletedJsonRenderPlugin, openapi_config, openapi_routes
from services.http.problems import ROUTING_EXCEPTION_HANDLERS
from services.http.version import API_PATH
from services.settings import Settings

log = structlog.get_logger(__name__)

# How long stopping waits for requests in hand (a dashboard's live stream never ends by itself).
GRACEFUL_TIMEOUT = 5
BACKLOG = 2048
MAX_BODY_SIZE = 1024 * 1024


class Health(msgspec.Struct, frozen=True):
    status: str


HEALTHY = Health(status="ok")


class HttpServerError(RuntimeError):
    """The HTTP server cannot start (its port is taken)."""


@get(
    f"{API_PATH}/health",
    tags=["health"],
    operation_id="getHealth",
    summary="Is it up?",
    response_headers=VERSION_HEADERS,
)
async def health() -> Health:
    """Whether the server answers; no token needed. `{"status": "ok"}`."""
    return HEALTHY


def build_app(
    context: HttpContext, extra_routes: Sequence[ControllerRouterHandler] = ()
) -> Litestar:
    """The ASGI app: `/api/v1` (API, OpenAPI, health) and `extra_routes` (the dashboard)."""
    document = CompletedJsonRenderPlugin()
    return Litestar(
        route_handlers=[health, *openapi_routes(document), api_router(context), *extra_routes],
        exception_handlers=ROUTING_EXCEPTION_HANDLERS,
        openapi_config=openapi_config(document),
        request_max_body_size=MAX_BODY_SIZE,
        # structlog renders Litestar's records like everyone else's (services.logging).
        logging_config=None,
        debug=False,
    )


def bind_http_socket(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port`, or `HttpServerError` saying what to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said outright: asyncio sets TCP_NODELAY on accepted connections only then
    # (without it, a small answer on a kept-alive connection waits ~40 ms for Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise HttpServerError(
            f"cannot serve HTTP on {host}:{port}: {e.strerror or e}; set BUURTBEELD_HTTP_PORT "
            "to a free port (and BUURTBEELD_HTTP_HOST to an address of this machine)"
        ) from None
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: stopping is the composition root's call."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@asynccontextmanager
async def http_server(
    settings: Settings,
    context: HttpContext,
    *,
    extra_routes: Sequence[ControllerRouterHandler] = (),
    sock: socket.socket | None = None,
    stopping: asyncio.Event | None = None,
) -> AsyncIterator[str]:
    """Serve the app on `sock` (or bind `settings`' host and port) until left; yields the URL.

    `stopping` is set first when leaving, so that endless answers (the dashboard's
    live streams) end and the graceful stop need not wait them out.
    """
    listening = sock or bind_http_socket(settings.http_host, settings.http_port)
    url = url_of(listening, settings.http_host)
    config = uvicorn.Config(
        build_app(context, extra_routes),
        lifespan="off",
        # uvicorn's C parser, not the pure-Python h11 (it halves the cost of a small answer).
        http="httptools",
        # Our logging renders uvicorn's lines; only its warnings and errors, since
        # http.ready and http.stopped say the rest. No access log: a line per request
        # would cost more than many answers do.
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_TIMEOUT,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening]), name="http-server")
    try:
        while not server.started:
            if serving.done():
                serving.result()  # its exception, if it failed
                raise HttpServerError(f"the HTTP server on {url} stopped while starting")
            await asyncio.sleep(0.01)
        log.info("http.ready", url=url, openapi=f"{url}{API_PATH}/openapi.json")
        yield url
    finally:
        if stopping is not None:
            stopping.set()
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(serving), timeout=GRACEFUL_TIMEOUT + 5)
        except TimeoutError:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        except Exception as e:  # its failure must not hide why we stop
            log.error("http.failed", error=repr(e))
        listening.close()
        log.info("http.stopped", url=url)
