"""What every dashboard handler shares: the pages' renderer, the visitor, forms.

- `Dashboard`: the HTTP context, the sessions and the templates, one per server.
- `Visitor`: the logged-in organisation of a request (a dependency); without a
  live session the visitor is sent to the log-in page.
- Forms: every POST must come from our own pages. The session cookie is
  SameSite=Strict, so another site's form arrives without it; on top of that,
  each form carries the session's form token and a cross-site `Origin` or
  `Sec-Fetch-Site` is refused (that also covers the log-in form, before any session).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from litestar import Request
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.response import Redirect, Response

from services.dashboard import wording
from services.dashboard.sessions import COOKIE, Notice, Session, Sessions
from services.http.context import HttpContext
from services.registries import Buurt, Organisation

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/static/dashboard"
LOGIN_PATH = "/inloggen"
FORM_TOKEN_FIELD = "formulier"
# Pages show need-to-know content: never cached, never framed, only our own scripts.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class NotLoggedIn(Exception):
    """The request needs a live session; `path` is where to return after logging in."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class FormRejected(Exception):
    """A POST that did not come from one of our pages (or an expired one)."""


@dataclass(frozen=True)
class Visitor:
    session: Session
    organisation: Organisation


@dataclass(frozen=True)
class Dashboard:
    context: HttpContext
    sessions: Sessions
    templates: jinja2.Environment
    # Set when the server stops: live streams end at once instead of holding it up.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def organisation_name(self, organisation_id: str | None) -> str:
        if organisation_id is None:
            return ""
        found = self.context.registries.organisations.get(organisation_id)
        return found.name if found is not None else organisation_id

    def organisation_names(self, organisation_ids: Iterable[str]) -> str:
        return ", ".join(self.organisation_name(o) for o in organisation_ids)

    def category_label(self, code: str) -> str:
        found = self.context.registries.categories.get(code)
        return found.label if found is not None else code.capitalize()

    def buurt(self, code: str) -> Buurt | None:
        return self.context.registries.buurten.get(code)

    def buurt_name(self, code: str) -> str:
        found = self.buurt(code)
        return found.name if found is not None else code

    def buurten_of(self, organisation: Organisation) -> list[Buurt]:
        """The buurten `organisation` is active in, as far as the buurten list names them."""
        known = list(self.context.registries.buurten)
        if organisation.buurten is None:
            return sorted(known, key=lambda b: b.name)
        named = {b.code: b for b in known}
        return sorted(
            (named.get(code) or Buurt(code=code, name=code) for code in organisation.buurten),
            key=lambda b: b.name,
        )

    def html(self, template: str, **values: Any) -> str:
        values.setdefault("visitor", None)
        values.setdefault("notices", [])
        return self.templates.get_template(template).render(dashboard=self, **values)

    def page(
        self, template: str, *, visitor: Visitor | None, status_code: int = 200, **values: Any
    ) -> Response[str]:
        """A whole page; the session's one-time notices are shown on it."""
        notices = visitor.session.take_notices() if visitor is not None else []
        return html_response(
            self.html(template, visitor=visitor, notices=notices, **values), status_code
        )


def html_response(html: str, status_code: int = 200) -> Response[str]:
    return Response(
        html, media_type=MediaType.HTML, status_code=status_code, headers=SECURITY_HEADERS
    )


def template_environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(
        age_text=wording.age_text,
        moment_text=wording.moment_text,
        status_label=wording.status_label,
        timeline_text=wording.timeline_text,
        timeline_detail=wording.timeline_detail,
        HIDDEN_CONTENT=wording.HIDDEN_CONTENT,
        CONTENT_EVENTS=wording.CONTENT_EVENTS,
        STATIC=STATIC_PATH,
        FORM_TOKEN_FIELD=FORM_TOKEN_FIELD,
        quote=lambda text: quote(str(text), safe=""),
    )
    return environment


def provide_visitor(request: Request[Any, Any, Any], dashboard: Dashboard) -> Visitor:
    """The logged-in organisation, or `NotLoggedIn`."""
    session = dashboard.sessions.find(request.cookies.get(COOKIE))
    organisation = (
        dashboard.context.registries.organisations.get(session.organisation_id)
        if session is not None
        else None
    )
    if session is None or organisation is None:
        path = request.url.path
        query = request.url.query
        raise NotLoggedIn(f"{path}?{query}" if query else path)
    return Visitor(session=session, organisation=organisation)


def login_redirect(path: str) -> Redirect:
    return Redirect(f"{LOGIN_PATH}?volgende={quote(path, safe='')}", status_code=303)


def session_cookie(request: Request[Any, Any, Any], session: Session | None) -> Cookie:
    """The session cookie to set (or, for None, to delete)."""
    return Cookie(
        key=COOKIE,
        value=session.id if session is not None else "",
        max_age=None if session is not None else 0,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def comes_from_our_pages(headers: Mapping[str, str]) -> bool:
    """False for a request a browser marks as sent by another site."""
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True  # an older browser; the form token still has to match
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


async def posted_form(request: Request[Any, Any, Any], visitor: Visitor | None) -> dict[str, str]:
    """The fields of a form our own page posted, or `FormRejected`."""
    if not comes_from_our_pages(request.headers):
        raise FormRejected()
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if visitor is not None and not visitor.session.accepts_form_token(fields.get(FORM_TOKEN_FIELD)):
        raise FormRejected()
    return fields


def local_path(path: str | None, default: str) -> str:
    """`path` when it is a path on this site (no other host), else `default`."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")):
        return default
    parts = urlsplit(path)
    return default if parts.scheme or parts.netloc else path


def notify(visitor: Visitor, kind: str, text: str, detail: str | None = None) -> None:
    visitor.session.notices.append(Notice(kind=kind, text=text, detail=detail))
