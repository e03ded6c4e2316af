"""The HTTP API of CONTRACT.md under `/api/v1`: reading the picture, acting on issues.

Thin: the path and query become a call of `PictureQueries` (the same as NATS
`query.<org>.…` and the dashboard ask) or of the `CommandHandler` (the same as
NATS `cmd.<org>.<verb>` goes through); answers are the msgspec Structs those
return, encoded by msgspec; a buurt's picture comes encoded from `BuurtAnswers`
(the live one put together from the buurt's kept, encoded issues). Refusals
become problem+json (`problems`).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import MediaType, Request, Response, Router, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import Parameter

from events.contract import COMMANDS, FORGET_PERSONAL_DATA, Accepted, PersonalDataForgotten
from projections.queries import STATUS_FILTERS, BuurtPicture, IssueHistory
from projections.visibility import IssueView
from services.coordination.command_handler import CommandHandler
from services.coordination.refusals import InvalidCommand, decoded
from services.http.auth import SECURITY, reader_of
from services.http.content_coding import accepts_gzip
from services.http.context import HttpContext
from services.http.problems import API_EXCEPTION_HANDLERS, documented
from services.http.version import API_PATH, API_VERSION, VERSION_HEADER
from services.queries import as_of_moment
from services.registries import Organisation

VERSION_HEADERS = [
    ResponseHeader(name=VERSION_HEADER, value=API_VERSION, description="The API's version")
]
ISSUES_TAG = "issues"
COMMANDS_TAG = "commands"
# operationId of each verb's POST, for the OpenAPI document's request bodies.
COMMAND_OPERATIONS = {
    "".join(w.capitalize() if i else w for i, w in enumerate(verb.split("-"))) + "Issue": verb
    for verb in COMMANDS
}
_object = msgspec.json.Decoder(dict[str, Any])


def api_router(context: HttpContext) -> Router:
    """The `/api/v1` routes, reading and acting through `context`."""
    queries = context.projections.queries
    commands = CommandHandler(context.coordination)
    answers = context.projections.answers

    @get(
        "/buurten/{buurt:str}/issues",
        tags=[ISSUES_TAG],
        operation_id="listBuurtIssues",
        summary="The picture of one buurt",
        responses={
            200: ResponseSpec(
                BuurtPicture, generate_examples=False, description="The buurt's picture"
            ),
            **documented(400, 401, 403),
        },
        description=(
            "The buurt's issues as the organisation may see them (need-to-know): unowned "
            "and escalated first, then the oldest; counts by status and category; `mine`."
        ),
    )
    async def buurt_issues(
        reader: Organisation,
        buurt: str = Parameter(description="CBS buurt code", pattern=r"^BU\d{4}[0-9A-Z]{4}$"),
        status: str = Parameter(
            default="open",
            description=f"One of {', '.join(STATUS_FILTERS)}; open is every status but "
            "resolved and merged.",
        ),
        owner: str | None = Parameter(default=None, description="Organisation id of the owner"),
        category: str | None = Parameter(
            default=None, description="Category code, or a category group"
        ),
        as_of: str | None = Parameter(
            query="asOf",
            default=None,
            description="The picture as it was then (ISO 8601 with offset), by replay",
        ),
        accept_encoding: str | None = Parameter(
            header="Accept-Encoding",
            default=None,
            description="With gzip, an answer given again (a polled buurt's) may come "
            "in gzip (Content-Encoding: gzip)",
        ),
    ) -> Response[bytes]:
        answer = await answers.answer(
            reader,
            buurt,
            status=status,
            owner=owner or None,
            category=category or None,
            as_of=as_of_moment(as_of),
            gzip=accepts_gzip(accept_encoding),
        )
        headers = {"Vary": "Accept-Encoding"}
        if answer.gzipped:
            headers["Content-Encoding"] = "gzip"
        return Response(answer.body, media_type=MediaType.JSON, headers=headers)

    @get(
        "/issues/{issueId:str}",
        tags=[ISSUES_TAG],
        operation_id="getIssue",
        summary="One issue, as the organisation may see it",
        responses=documented(401, 404),
    )
    async def issue(reader: Organisation, issueId: str) -> IssueView:
        return await queries.issue(reader, issueId)

    @get(
        "/issues/{issueId:str}/history",
        tags=[ISSUES_TAG],
        operation_id="getIssueHistory",
        summary="Everything that happened to one issue: who did what, when",
        responses=documented(401, 404),
    )
    async def history(reader: Organisation, issueId: str) -> IssueHistory:
        return await queries.history(reader, issueId)

    @post(
        "/personal-data/forget",
        status_code=200,
        tags=[COMMANDS_TAG],
        operation_id="forgetPersonalData",
        summary=f"Forget a data subject (as NATS cmd.<org>.{FORGET_PERSONAL_DATA})",
        description=(
            'Body `{"subjectRef": ...}` (a household or person the organisation\'s signals '
            'named) or `{"reporter": {"name": ..., "phone": ...}}` (a reporter of its signals, '
            "as they gave them). "
            "Their personal data becomes unreadable everywhere in the event log; the rest "
            "of every event stays. Only the organisation's own subjects (the token's)."
        ),
        request_max_body_size=64 * 1024,
        responses=documented(400, 401, 409),
    )
    async def forget(
        request: Request[Any, Any, Any], reader: Organisation
    ) -> PersonalDataForgotten:
        return await commands.forget(reader.id, await request.body(), path=request.url.path)

    acting = [
        _command_route(commands, operation_id, verb)
        for operation_id, verb in COMMAND_OPERATIONS.items()
    ]
    return Router(
        API_PATH,
        route_handlers=[buurt_issues, issue, history, forget, *acting],
        dependencies={
            "reader": Provide(reader_of(context.registries.organisations), sync_to_thread=False)
        },
        exception_handlers=API_EXCEPTION_HANDLERS,
        security=SECURITY,
        response_headers=VERSION_HEADERS,
    )


def _command_route(commands: CommandHandler, operation_id: str, verb: str) -> HTTPRouteHandler:
    @post(
        f"/issues/{{issueId:str}}/{verb}",
        status_code=200,
        tags=[COMMANDS_TAG],
        operation_id=operation_id,
        summary=f"{verb} (as NATS cmd.<org>.{verb})",
        description=(
            "The body has the fields of the NATS command; `issueId` may be left out "
            "(it is the path's), and must be the path's when given. The organisation "
            "is the token's."
        ),
        request_max_body_size=64 * 1024,
        responses=documented(400, 401, 403, 404, 409),
    )
    async def act(request: Request[Any, Any, Any], reader: Organisation, issueId: str) -> Accepted:
        body = command_body(issueId, await request.body())
        return await commands.act(reader.id, verb, body, path=request.url.path)

    return act


def command_body(issue_id: str, body: bytes) -> bytes:
    """The NATS command body for a POST to the issue `issue_id`: `issueId` filled in."""
    if not body.strip():
        return msgspec.json.encode({"issueId": issue_id})
    fields = decoded(lambda: _object.decode(body), "the body is not a JSON object")
    given = fields.setdefault("issueId", issue_id)
    if given != issue_id:
        raise InvalidCommand("issueId in the body is not the issue of the path")
    return msgspec.json.encode(fields)
