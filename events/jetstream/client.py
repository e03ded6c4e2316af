"""The event store's own NATS connection, on its own event-loop thread.

`eventsourcing` is synchronous; nats-py is asyncio. A `JetStreamClient` runs one
event loop in a daemon thread, connects there, and lets synchronous callers run
coroutines on it with a bounded wait (`run`). Every failure to reach the server
surfaces as the library's `OperationalError` within that bound.
"""

from __future__ import annotations

import asyncio
import logging
from _thread import allocate_lock
from collections.abc import Callable, Coroutine, Sequence
from threading import Thread
from typing import Any, TypeVar

import nats
import nats.errors
from eventsourcing.persistence import NotSupportedError, OperationalError
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

log = logging.getLogger(__name__)

T = TypeVar("T")

MINIMUM_SERVER_VERSION = (2, 12)
# Time on top of the operation timeout before a caller stops waiting on the loop.
_GRACE = 1.0


class UnsupportedServerError(NotSupportedError):
    """The nats-server is too old for the event store (no atomic batch publish)."""


class ReplyRouter:
    """Routes messages arriving on `<prefix>.<token>` to whoever registered the token."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._handlers: dict[str, Callable[[Msg], None]] = {}
        self._next = 0

    def register(self, handler: Callable[[Msg], None]) -> tuple[str, str]:
        """A fresh (reply subject, token) whose messages go to `handler`."""
        self._next += 1
        token = str(self._next)
        self._handlers[token] = handler
        return f"{self.prefix}.{token}", token

    def unregister(self, token: str) -> None:
        self._handlers.pop(token, None)

    async def route(self, msg: Msg) -> None:
        handler = self._handlers.get(msg.subject.rpartition(".")[2])
        if handler is not None:
            handler(msg)


class JetStreamClient:
    """Owns a NATS connection and the event-loop thread it runs on.

    Created connected; `close()` drains nothing (the store only makes requests),
    closes the connection and stops the thread.
    """

    def __init__(
        self,
        servers: Sequence[str],
        *,
        timeout: float = 5.0,
        connect_timeout: float = 5.0,
        credentials: str | None = None,
        name: str = "buurtbeeld-event-store",
    ) -> None:
        self.servers = list(servers)
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._closed = False
        try:
            self.nc: NATS = self.run(
                self._connect(connect_timeout, credentials, name),
                timeout=connect_timeout * max(1, len(self.servers)) + _GRACE,
            )
        except BaseException:
            self._stop_loop()
            raise

    async def _connect(self, connect_timeout: float, credentials: str | None, name: str) -> NATS:
        async def on_error(e: Exception) -> None:
            log.warning("nats connection error: %s", e)

        try:
            nc = await nats.connect(
                servers=self.servers,
                name=name,
                connect_timeout=connect_timeout,
                user_credentials=credentials,
                # Give up on a first connection that fails (set to "forever" below) ...
                allow_reconnect=True,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.25,
                # ... but never buffer writes while disconnected: a write that
                # failed for its caller must not be replayed after reconnecting.
                pending_size=0,
                error_cb=on_error,
            )
        except Exception as e:
            raise OperationalError(
                f"cannot connect to NATS at {', '.join(self.servers)}: {e!r}"
            ) from e
        # ... but once connected, keep reconnecting through server restarts.
        nc.options["max_reconnect_attempts"] = -1
        # One reply subscription for every multi-message request (nats-py resubscribes
        # it after a reconnect), instead of a SUB and UNSUB per request.
        self.replies = ReplyRouter(nc.new_inbox())
        await nc.subscribe(f"{self.replies.prefix}.*", cb=self.replies.route)
        version = nc.connected_server_version
        if (version.major, version.minor) < MINIMUM_SERVER_VERSION:
            await nc.close()
            needed = ".".join(map(str, MINIMUM_SERVER_VERSION))
            raise UnsupportedServerError(
                f"nats-server {version} at {nc.connected_url.netloc if nc.connected_url else '?'}"
                f" is too old: the JetStream event store needs nats-server >= {needed} "
                "(atomic batch publish)"
            )
        return nc

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop thread and wait for it, at most `timeout` (+ grace).

        A task and a bare lock rather than `run_coroutine_threadsafe`: this is
        the hot path of every store call, and the lighter handoff is measurably
        cheaper (see bench/store.py).
        """
        if self._closed:
            coro.close()
            raise OperationalError("the JetStream event store connection is closed")
        done = allocate_lock()
        done.acquire()
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:
            task = self._loop.create_task(coro)
            task.add_done_callback(lambda _: done.release())
            tasks.append(task)

        self._loop.call_soon_threadsafe(start)
        wait = (self.timeout if timeout is None else timeout) + _GRACE
        if not done.acquire(timeout=wait):
            self._loop.call_soon_threadsafe(lambda: tasks and tasks[0].cancel())
            raise OperationalError(f"NATS did not answer within {wait:.1f}s")
        task = tasks[0]
        if task.cancelled():
            raise OperationalError("the JetStream event store connection was closed")
        error = task.exception()
        if isinstance(error, nats.errors.Error | asyncio.TimeoutError | ConnectionError):
            raise OperationalError(f"NATS request failed: {error!r}") from error
        if error is not None:
            raise error
        return task.result()

    def close(self) -> None:
        """Cancel calls in flight (their callers get `OperationalError`), then disconnect."""
        if self._closed:
            return
        self._closed = True
        try:
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            future.result(timeout=self.timeout + _GRACE)
        except Exception as e:  # closing is best effort
            log.debug("closing the nats connection failed: %r", e)
        finally:
            self._stop_loop()

    async def _shutdown(self) -> None:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        nc = getattr(self, "nc", None)
        if nc is not None and not nc.is_closed:
            await nc.close()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
