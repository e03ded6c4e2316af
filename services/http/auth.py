"""Who is asking: the organisation whose API token the request bears.

`Authorization: Bearer <token>`; the token is recognised by its SHA-256 in the
organisations file (`Organisations.by_token`). Without a valid one: 401 with
`WWW-Authenticate: Bearer`. What the organisation may then see or do is the
queries' and the coordination's business (403, 404).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.openapi.spec import Reference, SecurityRequirement, SecurityScheme

from services.http.problems import Unauthenticated
from services.registries import Organisation, Organisations

BEARER_SCHEME = "bearerAuth"
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    BEARER_SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        description="The organisation's API token; the organisations file holds its SHA-256.",
    )
}
SECURITY: list[SecurityRequirement] = [{BEARER_SCHEME: []}]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def reader_of(
    organisations: Organisations,
) -> Callable[[Request[Any, Any, Any]], Organisation]:
    """The dependency that gives a handler its `reader`: the requesting organisation."""

    def reader(request: Request[Any, Any, Any]) -> Organisation:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise Unauthenticated("send Authorization: Bearer <your organisation's API token>")
        organisation = organisations.by_token(token)
        if organisation is None:
            raise Unauthenticated("this token belongs to no organisation", error="invalid_token")
        return organisation

    return reader
