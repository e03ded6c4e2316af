"""Live pages: server-sent events that carry the re-rendered part of a page.

Each open buurt page (and issue page) listens to `projections.changes`. When a
commit touches a row it shows (or some commits were dropped), the page's list
(or issue) is rendered again, exactly as a reload would, and sent as one
event; `static/live.js` puts it in place. Commits that come in together are
rendered once. The page says which log position it shows (`sinds`, and
`Last-Event-ID` on a reconnect), so nothing that happens in between is missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

from litestar import Request, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from projections.picture import IssueRow
from projections.runner import Committed
from services.coordination.refusals import Refusal
from services.dashboard.pages import issue_values
from services.dashboard.picture import Filters, picture_values
from services.dashboard.web import Dashboard, Visitor

KEEPALIVE = 15.0
RECONNECT_MS = 2000

Render = Callable[[Collection[str]], Awaitable[str]]


@get("/buurten/{code:str}/live", include_in_schema=False)
async def buurt_updates(
    request: Request[Any, Any, Any], dashboard: Dashboard, visitor: Visitor, code: str
) -> ServerSentEvent:
    """The buurt page's list, each time it changes (event `picture`)."""
    filters = Filters.from_query(request.query_params)

    async def render(changed: Collection[str]) -> str:
        values = await picture_values(dashboard, visitor, code, filters, changed)
        return dashboard.html("_picture.html", visitor=visitor, **values)

    return ServerSentEvent(
        updates(
            dashboard, visitor, lambda row: row.buurt == code, render, "picture", since(request)
        )
    )


@get("/zaken/{issue_id:str}/live", include_in_schema=False)
async def issue_updates(
    request: Request[Any, Any, Any], dashboard: Dashboard, visitor: Visitor, issue_id: str
) -> ServerSentEvent:
    """The issue page's details and timeline, each time the issue changes (event `issue`)."""

    async def render(changed: Collection[str]) -> str:
        values = await issue_values(dashboard, visitor, issue_id)
        return dashboard.html("_issue.html", visitor=visitor, here=f"/zaken/{issue_id}", **values)

    return ServerSentEvent(
        updates(dashboard, visitor, lambda row: row.id == issue_id, render, "issue", since(request))
    )


def since(request: Request[Any, Any, Any]) -> int | None:
    """The log position the page shows: `Last-Event-ID` on a reconnect, else `?sinds=`."""
    for given in (request.headers.get("last-event-id"), request.query_params.get("sinds")):
        if given and given.isdigit():
            return int(given)
    return None


async def updates(
    dashboard: Dashboard,
    visitor: Visitor,
    touches: Callable[[IssueRow], bool],
    render: Render,
    event: str,
    shown: int | None,
) -> AsyncIterator[ServerSentEventMessage]:
    """An event with the fresh rendering after each batch of commits that `touches` a row."""
    changes = dashboard.context.projections.changes
    async with changes.subscribe() as queue:
        yield ServerSentEventMessage(data=None, retry=RECONNECT_MS, comment="live")
        if changes.position is not None and changes.position != shown:
            # Commits between the page's rendering and this subscription.
            yield ServerSentEventMessage(data=await render(()), event=event, id=changes.position)
        while True:
            try:
                first = await next_change(queue, dashboard.stopping, KEEPALIVE)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="nog hier")
                continue
            except StopAsyncIteration:  # the server stops; the browser reconnects later
                return
            batch = [first]
            if dashboard.sessions.find(visitor.session.id) is None:
                yield ServerSentEventMessage(data="", event="logged-out")
                return
            while not queue.empty():
                batch.append(queue.get_nowait())
            changed = touched(batch, touches)
            if changed is not None and not changed:
                continue
            try:
                html = await render(changed or ())
            except Refusal:
                return
            yield ServerSentEventMessage(data=html, event=event, id=changes.position)


async def next_change(
    queue: asyncio.Queue[Committed | None], stopping: asyncio.Event, within: float
) -> Committed | None:
    """The next commit (None: some were dropped); `TimeoutError` after `within` seconds
    without one, `StopAsyncIteration` once `stopping` is set."""
    if stopping.is_set():
        raise StopAsyncIteration
    getting = asyncio.ensure_future(queue.get())
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        done, _ = await asyncio.wait(
            {getting, stopped}, timeout=within, return_when="FIRST_COMPLETED"
        )
    finally:
        for waiting in (getting, stopped):
            if not waiting.done():
                waiting.cancel()
    if getting in done:
        return getting.result()
    if stopped in done:
        raise StopAsyncIteration
    raise TimeoutError


def touched(batch: list[Committed | None], touches: Callable[[IssueRow], bool]) -> set[str] | None:
    """The ids of the rows in `batch` that `touches` selects; None when commits were dropped."""
    if any(committed is None for committed in batch):
        return None
    return {row.id for c in batch if c is not None for row in c.rows if touches(row)}
