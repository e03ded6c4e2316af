"""Pull requests on the INTAKE consumer, answered into one callback: `BatchFetcher`.

nats-py's `PullSubscription.fetch` waits for each message of a batch with its
own `asyncio.wait_for` (a task and a timer per message): at intake's rates
that was a large part of the service's time. Here the server's answers go to
a subscription callback that appends them to a list; a fetch waits once, for
the batch to be full or the request to end.

Like nats-py's fetch: first a `no_wait` request, for what is there now; if
nothing is, one that lingers up to `wait` and returns with the first message. Each request
has its own reply subject, so the end of one (a 404 or 408 status) is never
taken for the end of the next; messages are kept whatever request they answer
(they are delivered, and must be processed or they wait for the ack wait).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import APIError

STATUS = "Status"
DESCRIPTION = "Description"
# 404 no messages, 408 the request expired, 409 the consumer's limits (max
# waiting, max bytes, ...): the request is over, without an error. 100 is a
# heartbeat.
_ENDS = {"404", "408", "409"}
_HEARTBEAT = "100"
# A lingering request expires on the server a little before we stop waiting.
_EXPIRES_MARGIN = 0.05


class BatchFetcher:
    """Fetches batches from one durable pull consumer over `nc`."""

    def __init__(self, nc: NATS, stream: str, consumer: str) -> None:
        self._nc = nc
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._prefix = nc.new_inbox()
        self._subscription: Subscription | None = None
        self._messages: list[Msg] = []
        self._request = 0
        self._current = ""  # reply token of the request being waited for
        self._wanted = 0
        self._ended: tuple[str, str] | None = None
        self._done = asyncio.Event()

    def inbox_of(self, token: str) -> str:
        """The reply subject of request `token`."""
        return f"{self._prefix}.{token}"

    async def start(self) -> None:
        self._subscription = await self._nc.subscribe(f"{self._prefix}.*", cb=self._on_message)

    async def stop(self) -> None:
        if self._subscription is not None:
            with suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def fetch(self, batch: int, wait: float) -> list[Msg]:
        """Up to `batch` messages: what is there now, else the first within `wait` seconds.

        Raises `TimeoutError` when nothing came, `APIError` when the server refused.
        """
        if not self._messages:
            await self._pull({"batch": batch, "no_wait": True}, batch, wait)
        if not self._messages:
            # Nothing waiting: the first signal to come is taken at once (freshness), and
            # whatever the request brings after it is kept for the next fetch.
            expires = max(wait - _EXPIRES_MARGIN, 0.001)
            await self._pull({"batch": batch, "expires": int(expires * 1e9)}, 1, wait)
        if not self._messages:
            raise TimeoutError
        taken, self._messages = self._messages[:batch], self._messages[batch:]
        return taken

    async def _pull(self, request: dict[str, object], enough: int, wait: float) -> None:
        """Send `request`; return when `enough` messages are here, it ends, or after `wait`."""
        self._request += 1
        token = str(self._request)
        self._current, self._wanted, self._ended = token, enough, None
        self._done.clear()
        try:
            await self._nc.publish(
                self._next_subject, json.dumps(request).encode(), reply=self.inbox_of(token)
            )
            with suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), wait)
        finally:
            self._current = ""
        if self._ended is not None and self._ended[0] not in _ENDS:
            status, description = self._ended
            raise APIError(code=int(status), description=description)

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers
        status = headers.get(STATUS) if headers else None
        if status is None:
            self._messages.append(msg)
            if self._current and len(self._messages) >= self._wanted:
                self._done.set()
        elif status != _HEARTBEAT and msg.subject.rpartition(".")[2] == self._current:
            assert headers is not None
            self._ended = (status, headers.get(DESCRIPTION, ""))
            self._done.set()
