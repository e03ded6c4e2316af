"""The OpenAPI document at `/api/v1/openapi.json`: Litestar's, with the command bodies.

Litestar generates the document from the route handlers (paths, parameters,
the msgspec Structs of the answers, the bearer security scheme). It is served
at `/api/v1/openapi.json`, with a Swagger UI at `/api/v1/docs`. The command
POSTs read their body themselves (so that `issueId` may be left out), so their
request bodies are added here from the contract's command Structs.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from litestar import Request, get
from litestar.enums import OpenAPIMediaType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Tag

from events.contract import COMMANDS
from services.http.api import COMMAND_OPERATIONS, COMMANDS_TAG, ISSUES_TAG
from services.http.auth import SECURITY_SCHEMES
from services.http.version import API_PATH, API_VERSION

TITLE = "Buurtbeeld"
DESCRIPTION = (
    "The shared picture of a neighbourhood (partner contract version 1): read a buurt's "
    "issues, one issue and its history, and act on issues. Every request except the "
    "health check bears the organisation's API token (`Authorization: Bearer`). Errors "
    "are application/problem+json with the contract's `code`. Times are ISO 8601."
)
DOCS_PATH = f"{API_PATH}/docs"
REF_TEMPLATE = "#/components/schemas/{name}"


class CompletedJsonRenderPlugin(JsonRenderPlugin):
    """Serves Litestar's document with the command request bodies added; rendered once."""

    def __init__(self) -> None:
        super().__init__()
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = msgspec.json.encode(with_command_bodies(openapi_schema))
        return self._rendered


def openapi_routes(plugin: CompletedJsonRenderPlugin) -> list[HTTPRouteHandler]:
    """`GET /api/v1/openapi.json`.

    Served here rather than by Litestar's OpenAPI router at `/api/v1`: that router
    answers every unknown `/api/v1/<name>` with an HTML page, where the API answers
    problem+json.
    """

    @get(
        f"{API_PATH}/openapi.json",
        media_type=OpenAPIMediaType.OPENAPI_JSON,
        include_in_schema=False,
        sync_to_thread=False,
    )
    def openapi_document(request: Request[Any, Any, Any]) -> bytes:
        return plugin.render(request, request.app.openapi_schema.to_schema())

    return [openapi_document]


def with_command_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with each command POST's request body: its verb's command Struct."""
    names = {verb: kind.__name__ for verb, kind in COMMANDS.items()}
    schemas, components = msgspec.json.schema_components(
        list(COMMANDS.values()), ref_template=REF_TEMPLATE
    )
    del schemas
    completed = copy.deepcopy(document)
    known = completed.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in components.items():
        known.setdefault(name, schema)
    for operations in completed.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            verb = COMMAND_OPERATIONS.get(operation.get("operationId", ""))
            if verb is None:
                continue
            operation["requestBody"] = {
                "required": False,
                "description": "issueId may be left out: it is the path's",
                "content": {
                    "application/json": {"schema": {"$ref": REF_TEMPLATE.format(name=names[verb])}}
                },
            }
    return completed


def openapi_config(plugin: CompletedJsonRenderPlugin) -> OpenAPIConfig:
    """Litestar's OpenAPI: the document, and a Swagger UI to read it at `/api/v1/docs`."""
    return OpenAPIConfig(
        title=TITLE,
        version=API_VERSION,
        description=DESCRIPTION,
        path=DOCS_PATH,
        render_plugins=[SwaggerRenderPlugin(path="/"), plugin],
        components=Components(security_schemes=SECURITY_SCHEMES),
        tags=[
            Tag(name=ISSUES_TAG, description="Reading the picture"),
            Tag(name=COMMANDS_TAG, description="Acting on an issue"),
        ],
        use_handler_docstrings=False,
    )
