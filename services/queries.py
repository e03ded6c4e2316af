"""The picture's questions on NATS: `query.<org>.<question>` request/reply.

The same questions as the HTTP API, asked of the same `PictureQueries` (a
buurt's live picture of the same `BuurtAnswers`), with the same JSON in the
reply:

- `query.<org>.issues`  `{"buurt", "status"?, "owner"?, "category"?, "asOf"?}` → the buurt's picture
- `query.<org>.issue`   `{"issueId"}` → one issue
- `query.<org>.history` `{"issueId"}` → its history

A refusal is `{"ok": false, "code", "message"}`, as for commands. The
organisation is the subject's token and must be in the organisations file;
that only it may publish there is NATS's business (its permissions), as for
`cmd.<org>.<verb>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from events.contract.base import IssueId
from events.contract.codec import encode
from projections.answers import BuurtAnswers
from services.coordination.refusals import Conflict, Forbidden, InvalidCommand, Refusal, decoded
from services.coordination.replies import refused
from services.registries import Organisation, Organisations

log = structlog.get_logger(__name__)

QUERY_SUBJECT = "query.*.*"
# Several instances share the questions, as they share the commands.
QUERY_QUEUE = "buurtbeeld-queries"
QUESTIONS = ("issues", "issue", "history")
MAX_IN_FLIGHT = 64
# How long stopping waits for the questions in hand.
GRACEFUL_TIMEOUT = 10.0

Filter = Annotated[str, msgspec.Meta(max_length=128)] | None


class IssuesQuestion(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """`query.<org>.issues`: the query parameters of `GET /api/v1/buurten/{buurt}/issues`."""

    buurt: Annotated[str, msgspec.Meta(max_length=16)]
    status: Annotated[str, msgspec.Meta(max_length=32)] = "open"
    owner: Filter = None
    category: Filter = None
    as_of: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class IssueQuestion(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """`query.<org>.issue` and `query.<org>.history`."""

    issue_id: IssueId


_issues = msgspec.json.Decoder(IssuesQuestion)
_issue = msgspec.json.Decoder(IssueQuestion)


def as_of_moment(text: str | None) -> datetime | None:
    """The `asOf` parameter, in UTC: ISO 8601 with an offset (`Z` or `+01:00`); None when not given.

    A `+` that arrived as a space (an unencoded query string) is read as the `+` it was.
    """
    if text is None or not text.strip():
        return None
    cleaned = text.strip()
    if " " in cleaned:
        date, _, rest = cleaned.partition("T")
        cleaned = f"{date}T{rest.replace(' ', '+')}"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise InvalidCommand(
            f"asOf {text[:64]!r} is not an ISO 8601 moment, e.g. 2026-11-20T09:30:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InvalidCommand("asOf needs a UTC offset, e.g. 2026-11-20T09:30:00Z")
    # Answers give times in UTC, the moment asked for included.
    return moment.astimezone(UTC)


class QueryHandler:
    """Answers one request on `query.<org>.<question>`."""

    def __init__(self, answers: BuurtAnswers, organisations: Organisations) -> None:
        self.answers = answers
        self.queries = answers.queries
        self.organisations = organisations
        self._questions: dict[
            str, Callable[[Organisation, bytes], Awaitable[msgspec.Struct | bytes]]
        ] = {
            "issues": self._buurt_issues,
            "issue": self._issue,
            "history": self._history,
        }

    async def reply(self, subject: str, body: bytes) -> bytes:
        """The reply body for the request `body` on `subject`: the answer, or a refusal."""
        _, organisation_id, question = subject.split(".", 2)
        try:
            reader = self.organisations.get(organisation_id)
            if reader is None:
                raise Forbidden(f"{organisation_id[:32]!r} is not in the organisations file")
            ask = self._questions.get(question)
            if ask is None:
                raise InvalidCommand(
                    f"{question[:32]!r} is not a question: use one of {', '.join(QUESTIONS)}"
                )
            answer = await ask(reader, body)
        except Refusal as refusal:
            log.info(
                "query.refused",
                subject=subject,
                organisation=organisation_id,
                code=refusal.code,
                message=refusal.message,
            )
            return encode(refused(refusal))
        return answer if isinstance(answer, bytes) else encode(answer)

    async def _buurt_issues(self, reader: Organisation, body: bytes) -> bytes:
        asked = _decoded(_issues, body)
        answer = await self.answers.answer(
            reader,
            asked.buurt,
            status=asked.status,
            owner=asked.owner or None,
            category=asked.category or None,
            as_of=as_of_moment(asked.as_of),
        )
        return answer.body

    async def _issue(self, reader: Organisation, body: bytes) -> msgspec.Struct:
        return await self.queries.issue(reader, _decoded(_issue, body).issue_id)

    async def _history(self, reader: Organisation, body: bytes) -> msgspec.Struct:
        return await self.queries.history(reader, _decoded(_issue, body).issue_id)


def _decoded(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    return decoded(lambda: decoder.decode(body), "not a valid question")


@asynccontextmanager
async def query_service(
    nc: NATS, answers: BuurtAnswers, organisations: Organisations
) -> AsyncIterator[QueryHandler]:
    """Answer `query.*.*` on `nc` until the context is left; then finish the questions in hand."""
    handler = QueryHandler(answers, organisations)
    answering: set[asyncio.Task[None]] = set()
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def answer(msg: Msg) -> None:
        try:
            reply = await handler.reply(msg.subject, msg.data)
        except Exception as e:  # a failure must still get an answer, and not stop the others
            log.error("query.failed", subject=msg.subject, error=repr(e))
            reply = encode(refused(Conflict("the question could not be answered; try again")))
        if msg.reply:
            await msg.respond(reply)

    async def received(msg: Msg) -> None:
        # Each question in its own task: a slow as-of replay holds up no one else. At most
        # MAX_IN_FLIGHT at once; beyond that the subscription's own pending limits apply.
        await in_flight.acquire()
        task = asyncio.create_task(answer(msg))
        answering.add(task)
        task.add_done_callback(answering.discard)
        task.add_done_callback(lambda _: in_flight.release())

    subscription = await nc.subscribe(QUERY_SUBJECT, queue=QUERY_QUEUE, cb=received)
    log.info("queries.started", subject=QUERY_SUBJECT, queue=QUERY_QUEUE)
    try:
        yield handler
    finally:
        await subscription.unsubscribe()
        if answering:
            await asyncio.wait(set(answering), timeout=GRACEFUL_TIMEOUT)
        log.info("queries.stopped")
