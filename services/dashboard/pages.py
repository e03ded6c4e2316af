"""The dashboard's pages: log-in, the buurten, a buurt's picture, one issue."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.response import Redirect, Response

from services.coordination.refusals import Forbidden, InvalidCommand, NotFound, Refusal
from services.dashboard.picture import (
    Filters,
    available_actions,
    handover_candidates,
    picture_values,
)
from services.dashboard.sessions import COOKIE
from services.dashboard.web import (
    LOGIN_PATH,
    Dashboard,
    Visitor,
    local_path,
    posted_form,
    session_cookie,
)
from services.dashboard.wording import STATUS_FILTER_LABELS, refusal_text

BUURTEN_PATH = "/buurten"
# Counting each buurt's open issues on the buurten page is worth it for a short list only.
COUNT_BUURTEN_UP_TO = 60


@get("/", include_in_schema=False)
async def home(request: Request[Any, Any, Any], dashboard: Dashboard) -> Redirect:
    """To the buurten when logged in, else to the log-in page."""
    logged_in = dashboard.sessions.find(request.cookies.get(COOKIE)) is not None
    return Redirect(BUURTEN_PATH if logged_in else LOGIN_PATH, status_code=303)


@get(LOGIN_PATH, include_in_schema=False)
async def login_page(
    request: Request[Any, Any, Any], dashboard: Dashboard, volgende: str = ""
) -> Response[str] | Redirect:
    if dashboard.sessions.find(request.cookies.get(COOKIE)) is not None:
        return Redirect(local_path(volgende, BUURTEN_PATH), status_code=303)
    logged_out = request.query_params.get("uitgelogd") == "1"
    return dashboard.page(
        "login.html", visitor=None, next=volgende, logged_out=logged_out, error=None
    )


@post(LOGIN_PATH, include_in_schema=False, status_code=303)
async def log_in(request: Request[Any, Any, Any], dashboard: Dashboard) -> Response[str] | Redirect:
    """The organisation's API token in, a session cookie out."""
    fields = await posted_form(request, None)
    next_path = local_path(fields.get("volgende"), BUURTEN_PATH)
    organisation = dashboard.context.registries.organisations.by_token(
        fields.get("token", "").strip()
    )
    if organisation is None:
        return dashboard.page(
            "login.html",
            visitor=None,
            status_code=401,
            next=fields.get("volgende", ""),
            logged_out=False,
            error="Deze token kennen we niet. Controleer hem en probeer het opnieuw.",
        )
    dashboard.sessions.end(request.cookies.get(COOKIE))
    session = dashboard.sessions.start(organisation.id)
    return Redirect(next_path, status_code=303, cookies=[session_cookie(request, session)])


@post("/uitloggen", include_in_schema=False, status_code=303)
async def log_out(
    request: Request[Any, Any, Any], dashboard: Dashboard, visitor: Visitor
) -> Redirect:
    await posted_form(request, visitor)
    dashboard.sessions.end(visitor.session.id)
    return Redirect(
        f"{LOGIN_PATH}?uitgelogd=1", status_code=303, cookies=[session_cookie(request, None)]
    )


@get(BUURTEN_PATH, include_in_schema=False)
async def buurten_page(dashboard: Dashboard, visitor: Visitor) -> Response[str]:
    """The buurten the organisation is active in, with their open and unowned issues."""
    buurten = dashboard.buurten_of(visitor.organisation)
    counts: dict[str, tuple[int, int]] = {}
    if len(buurten) <= COUNT_BUURTEN_UP_TO:
        queries = dashboard.context.projections.queries
        for buurt in buurten:
            try:
                picture = await queries.buurt_issues(visitor.organisation, buurt.code)
            except Refusal:
                continue
            waiting = sum(n for s, n in picture.counts.by_status.items() if s in UNCLAIMED)
            counts[buurt.code] = (len(picture.issues), waiting)
    return dashboard.page("buurten.html", visitor=visitor, buurten=buurten, counts=counts)


UNCLAIMED = frozenset({"unowned", "escalated"})


@get("/buurt", include_in_schema=False)
async def buurt_by_code(code: str = "") -> Redirect:
    """The buurten page's "ga naar" form: a typed code, to its page."""
    return Redirect(f"{BUURTEN_PATH}/{quote(code.strip().upper()[:16], safe='')}", status_code=303)


@get(f"{BUURTEN_PATH}/{{code:str}}", include_in_schema=False)
async def buurt_page(
    request: Request[Any, Any, Any], dashboard: Dashboard, visitor: Visitor, code: str
) -> Response[str]:
    """A buurt's picture: what needs someone first, owners, ages, counts, filters."""
    filters = Filters.from_query(request.query_params)
    shown = dashboard.context.projections.changes.position  # before reading: see live.py
    try:
        values = await picture_values(dashboard, visitor, code, filters)
    except Refusal as refusal:
        status = {Forbidden: 403, InvalidCommand: 400}.get(type(refusal), 404)
        return dashboard.page(
            "problem.html",
            visitor=visitor,
            status_code=status,
            title="Beeld niet beschikbaar" if status == 400 else "Buurt niet beschikbaar",
            text=refusal_text(refusal.code),
            detail=refusal.message,
        )
    owners = sorted(
        (o for o in dashboard.context.registries.organisations if o.is_active_in(code)),
        key=lambda o: o.name,
    )
    return dashboard.page(
        "buurt.html",
        visitor=visitor,
        buurt_info=dashboard.buurt(code),
        categories=list(dashboard.context.registries.categories),
        owners=owners,
        status_choices=STATUS_FILTER_LABELS,
        shown=shown,
        **values,
    )


@get("/zaken/{issue_id:str}", include_in_schema=False)
async def issue_page(
    request: Request[Any, Any, Any], dashboard: Dashboard, visitor: Visitor, issue_id: str
) -> Response[str]:
    """One issue: what the visitor may see of it, its timeline, and what it can do."""
    shown = dashboard.context.projections.changes.position  # before reading: see live.py
    try:
        values = await issue_values(dashboard, visitor, issue_id)
    except Refusal as refusal:
        return dashboard.page(
            "problem.html",
            visitor=visitor,
            status_code=404 if isinstance(refusal, NotFound) else 403,
            title="Zaak niet gevonden",
            text=refusal_text(refusal.code),
            detail=None,
        )
    return dashboard.page(
        "issue.html", visitor=visitor, here=request.url.path, shown=shown, **values
    )


async def issue_values(dashboard: Dashboard, visitor: Visitor, issue_id: str) -> dict[str, Any]:
    """What `_issue.html` renders; raises the queries' refusals (`not-found`)."""
    queries = dashboard.context.projections.queries
    view = await queries.issue(visitor.organisation, issue_id)
    history = await queries.history(visitor.organisation, issue_id)
    return {
        "issue": view,
        "history": history.events,
        "actions": available_actions(view, visitor.organisation.id),
        "candidates": handover_candidates(dashboard, visitor, view.buurt),
    }
