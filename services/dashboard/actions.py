"""Acting on an issue from the dashboard: a POST form per verb.

The form's fields become the same command a partner sends (`cmd.<org>.<verb>`,
decoded by the same decoder) and go through the same `Coordination.handle`.
The answer is a redirect (post/redirect/get) with a one-time notice: what was
done, or the refusal in words a coordinator can act on. Before redirecting we
wait (briefly) for the picture to show the change, so the next page does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio.to_thread
import msgspec
from eventsourcing.persistence import OperationalError
from litestar import Request, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect

from events.contract import Accepted, Command
from events.contract.codec import decode_command
from projections.changes import PictureChanges
from projections.queries import PictureQueries
from services.coordination.refusals import Conflict, InvalidCommand, Refusal
from services.dashboard.web import Dashboard, Visitor, local_path, notify, posted_form
from services.dashboard.wording import DONE, refusal_text
from services.registries import Organisation

# Verb → the form fields it takes (the contract's camelCase names).
VERB_FIELDS: dict[str, tuple[str, ...]] = {
    "claim": (),
    "release": (),
    "handover": ("to",),
    "accept-handover": (),
    "decline-handover": (),
    "resolve": ("resolution",),
    "reopen": ("reason",),
}
ACTOR = "dashboard"
# How long a redirect waits for the picture to show an accepted command.
VISIBLE_WITHIN = 2.0


@post("/zaken/{issue_id:str}/{verb:str}", include_in_schema=False, status_code=303)
async def act(
    request: Request[Any, Any, Any],
    dashboard: Dashboard,
    visitor: Visitor,
    issue_id: str,
    verb: str,
) -> Redirect:
    """Carry out `verb` on the issue for the visitor's organisation, then back to the page."""
    if verb not in VERB_FIELDS:
        raise NotFoundException()
    fields = await posted_form(request, visitor)
    back = local_path(fields.get("terug"), f"/zaken/{issue_id}")
    body = {"issueId": issue_id, "actor": ACTOR}
    body.update({name: fields.get(name, "").strip() for name in VERB_FIELDS[verb]})
    try:
        command = form_command(verb, body)
        accepted = await carry_out(dashboard, visitor.organisation, verb, command)
    except Refusal as refusal:
        notify(visitor, "fout", refusal_text(refusal.code), refusal.message)
    else:
        notify(visitor, "ok", DONE[verb])
        await until_visible(
            dashboard.context.projections.queries,
            dashboard.context.projections.changes,
            visitor.organisation,
            accepted,
        )
    return Redirect(back, status_code=303)


def form_command(verb: str, body: dict[str, str]) -> Command:
    """The command for `verb`, decoded and checked exactly as one sent on NATS."""
    missing = [name for name in VERB_FIELDS[verb] if not body.get(name)]
    if missing:
        raise InvalidCommand(f"{', '.join(missing)}: required")
    try:
        return decode_command(verb, msgspec.json.encode(body))
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise InvalidCommand(f"not a valid {verb} command: {e}") from None


async def carry_out(
    dashboard: Dashboard, organisation: Organisation, verb: str, command: Command
) -> Accepted:
    """`Coordination.handle` in a worker thread (it blocks on the event store)."""
    try:
        accepted: Accepted = await anyio.to_thread.run_sync(
            dashboard.context.coordination.handle, organisation.id, verb, command
        )
    except OperationalError as e:
        raise Conflict(f"the event store could not be reached: {e}") from None
    return accepted


async def until_visible(
    queries: PictureQueries,
    changes: PictureChanges,
    reader: Organisation,
    accepted: Accepted,
    within: float = VISIBLE_WITHIN,
) -> bool:
    """Wait until the picture shows the issue at `accepted.version` (True), or `within` ends."""
    deadline = time.monotonic() + within
    async with changes.subscribe() as queue:
        while True:
            try:
                view = await queries.issue(reader, accepted.issue_id)
            except Refusal:
                return False
            if view.version >= accepted.version:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                return False
