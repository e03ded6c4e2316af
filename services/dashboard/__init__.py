"""The wijkteam dashboard: server-rendered Dutch pages at the site root `/`.

`dashboard_routes(context)` hands the HTTP server (services/http) the route
handlers to mount next to the API: log-in, the buurten, a buurt's picture
(live, by server-sent events), an issue with its timeline and the forms to act
on it, and the static CSS and script.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from litestar import Request, Router
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.response import Response
from litestar.static_files import create_static_files_router

from services.dashboard import actions, live, pages
from services.dashboard.sessions import Sessions
from services.dashboard.web import (
    STATIC,
    STATIC_PATH,
    TEMPLATES,
    Dashboard,
    FormRejected,
    NotLoggedIn,
    login_redirect,
    provide_visitor,
    template_environment,
)
from services.http.context import HttpContext

__all__ = ["dashboard_routes"]

log = structlog.get_logger(__name__)

HANDLERS = (
    pages.home,
    pages.login_page,
    pages.log_in,
    pages.log_out,
    pages.buurten_page,
    pages.buurt_by_code,
    pages.buurt_page,
    pages.issue_page,
    actions.act,
    live.buurt_updates,
    live.issue_updates,
)


def dashboard_routes(
    context: HttpContext, *, stopping: asyncio.Event | None = None
) -> list[Router]:
    """The dashboard's routes, to mount at `/`; one set of sessions per call.

    Setting `stopping` (when the server is about to stop) ends the pages' live
    streams, which would otherwise hold the server's graceful stop up until its timeout.
    """
    if not (TEMPLATES / "base.html").is_file():
        raise RuntimeError(
            f"the dashboard's templates are missing from {TEMPLATES}: an installation "
            "without the package data services/dashboard/templates and static"
        )
    dashboard = Dashboard(
        context=context,
        sessions=Sessions(),
        templates=template_environment(),
        stopping=stopping or asyncio.Event(),
    )

    def not_logged_in(request: Request[Any, Any, Any], error: NotLoggedIn) -> Response[Any]:
        if request.url.path.endswith("/live"):
            return Response("niet ingelogd", status_code=401, media_type="text/plain")
        return login_redirect(error.path)

    def form_rejected(request: Request[Any, Any, Any], error: FormRejected) -> Response[str]:
        return dashboard.page(
            "problem.html",
            visitor=None,
            status_code=403,
            title="Formulier niet geaccepteerd",
            text=(
                "Dit formulier kwam niet van een pagina van Buurtbeeld, of de pagina was "
                "verlopen. Laad de pagina opnieuw en probeer het nog eens."
            ),
            detail=None,
        )

    def failed(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
        if isinstance(error, HTTPException):  # Litestar's own: 404, 405, a bad parameter
            code = error.status_code
            title, text = "Niet gevonden", "Deze pagina bestaat niet."
            if code != 404:
                title, text = "Dat ging mis", "Dit verzoek kon niet worden verwerkt."
            return dashboard.page(
                "problem.html", visitor=None, status_code=code, title=title, text=text, detail=None
            )
        log.error("dashboard.failed", path=request.url.path, error=repr(error), exc_info=error)
        return dashboard.page(
            "problem.html",
            visitor=None,
            status_code=500,
            title="Er ging iets mis",
            text="Er ging iets mis bij het maken van deze pagina. Probeer het later opnieuw.",
            detail=None,
        )

    def provide_dashboard() -> Dashboard:
        return dashboard

    pages_router = Router(
        path="/",
        route_handlers=list(HANDLERS),
        dependencies={
            "dashboard": Provide(provide_dashboard, sync_to_thread=False, use_cache=True),
            "visitor": Provide(provide_visitor, sync_to_thread=False),
        },
        exception_handlers={
            NotLoggedIn: not_logged_in,
            FormRejected: form_rejected,
            Exception: failed,
        },
        include_in_schema=False,
    )
    static_router = create_static_files_router(
        path=STATIC_PATH, directories=[STATIC], name="dashboard-static", include_in_schema=False
    )
    return [pages_router, static_router]
