"""Errors as `application/problem+json` (RFC 9457), with the contract's `code`.

A `Refusal` (of a command or a query) maps to its HTTP status here, once;
Litestar's own errors (a malformed query parameter, an unknown path) and a
missing or unknown token get the same shape, so that a client reads one kind
of error from the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.exceptions.responses import create_exception_response
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from services.coordination.refusals import Refusal
from services.coordination.replies import MAX_MESSAGE_LENGTH
from services.http.version import API_VERSION, VERSION_HEADER

log = structlog.get_logger(__name__)

API_PREFIX = "/api/"
PROBLEM_JSON = "application/problem+json"
# Where the problem types are described; a URN, since a type need not be fetchable.
PROBLEM_TYPE = "urn:buurtbeeld:problem:{code}"

STATUS_OF_CODE: Mapping[str, int] = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not-found": 404,
    "method-not-allowed": 405,
    "already-owned": 409,
    "not-owner": 409,
    "conflict": 409,
    "internal": 500,
}
TITLE_OF_CODE: Mapping[str, str] = {
    "invalid": "The request is not valid",
    "unauthenticated": "A valid bearer token is needed",
    "forbidden": "The organisation may not do this",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "already-owned": "The issue already has an owner",
    "not-owner": "Only the owner may do this",
    "conflict": "The issue changed meanwhile; try again",
    "internal": "Something went wrong on our side",
}


DESCRIPTION_OF_STATUS: Mapping[int, str] = {
    400: "invalid: a parameter or the body is not valid",
    401: "unauthenticated: no bearer token, or one of no organisation",
    403: "forbidden: the organisation is not active in the buurt, or may not act",
    404: "not-found: no such issue, or none the organisation may see",
    409: "already-owned, not-owner or conflict: the rules refuse it as the issue is now",
}


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """RFC 9457 problem details, with the contract's refusal `code` beside them."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


_encoder = msgspec.json.Encoder()


def documented(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI responses of these error statuses: problem+json."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=DESCRIPTION_OF_STATUS[status],
            generate_examples=False,
        )
        for status in statuses
    }


def problem_response(
    code: str,
    detail: str,
    *,
    status: int | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes]:
    """The problem+json response for `code`."""
    status = status or STATUS_OF_CODE.get(code, 400)
    problem = Problem(
        type=PROBLEM_TYPE.format(code=code),
        title=TITLE_OF_CODE.get(code, "The request cannot be served"),
        status=status,
        detail=detail[:MAX_MESSAGE_LENGTH],
        code=code,
        instance=instance,
    )
    return Response(
        _encoder.encode(problem),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={VERSION_HEADER: API_VERSION, **(headers or {})},
    )


class Unauthenticated(Exception):
    """No bearer token, or one that belongs to no organisation: 401."""

    def __init__(self, detail: str, *, error: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        # RFC 6750: `invalid_token` when a token was given but is not valid.
        self.challenge = "Bearer" if error is None else f'Bearer error="{error}"'


def refusal_problem(request: Request[Any, Any, Any], refusal: Refusal) -> Response[bytes]:
    return problem_response(refusal.code, refusal.message, instance=request.url.path)


def unauthenticated_problem(
    request: Request[Any, Any, Any], error: Unauthenticated
) -> Response[bytes]:
    return problem_response(
        "unauthenticated",
        error.detail,
        instance=request.url.path,
        headers={"WWW-Authenticate": error.challenge},
    )


def http_problem(request: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    """Litestar's own errors (bad parameters, unknown paths, wrong methods) as problems."""
    status = error.status_code
    if isinstance(error, ValidationException):
        code = "invalid"
        detail = _validation_detail(error)
    elif isinstance(error, NotFoundException):
        code, detail = "not-found", f"no such resource: {request.url.path[:200]}"
    elif status == 405:
        code, detail = "method-not-allowed", str(error.detail)
    elif status == 401:
        code, detail = "unauthenticated", str(error.detail)
    elif status == 403:
        code, detail = "forbidden", str(error.detail)
    elif status >= 500:
        code, detail = "internal", "the server could not answer this request"
    else:
        code, detail = "invalid", str(error.detail)
    headers = dict(error.headers or {})
    return problem_response(
        code, detail, status=status, instance=request.url.path, headers=headers or None
    )


def internal_problem(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    log.error("http.failed", path=request.url.path, method=request.method, error=repr(error))
    return problem_response(
        "internal",
        "the server could not answer this request",
        status=HTTP_500_INTERNAL_SERVER_ERROR,
        instance=request.url.path,
    )


def _validation_detail(error: ValidationException) -> str:
    """What was wrong, from Litestar's `extra` (a list of {message, key, source})."""
    extra = error.extra if isinstance(error.extra, list) else []
    parts = []
    for item in extra:
        if isinstance(item, dict):
            where = item.get("key")
            message = item.get("message", "")
            parts.append(f"{where}: {message}" if where else str(message))
    return "; ".join(parts) or str(error.detail)


def routing_problem(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """No route for the path or method: a problem under the API, Litestar's answer elsewhere
    (the dashboard's pages are HTML)."""
    if request.url.path.startswith(API_PREFIX):
        return http_problem(request, error)
    return create_exception_response(request, error)


# The API router's handlers: everything that goes wrong in an API request.
API_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    Refusal: refusal_problem,
    Unauthenticated: unauthenticated_problem,
    HTTPException: http_problem,
    Exception: internal_problem,
}
# The application's: what fails before a route is found.
ROUTING_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    NotFoundException: routing_problem,
    MethodNotAllowedException: routing_problem,
}
