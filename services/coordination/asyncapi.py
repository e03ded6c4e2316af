"""The AsyncAPI document of the NATS interface, generated from the FastStream declarations.

    python -m services.coordination.asyncapi      # rewrite docs/asyncapi.json

FastStream documents what it carries (commands, rejections), with the
contract's message schemas from the handlers' annotations. Added here: the
replies of `cmd.{org}.{verb}` (FastStream does not document replies), and
`intake.{org}.signals`, which the service reads with a nats-py pull loop of its
own (see `intake_pull`), and the picture's questions on `query.{org}.{question}`,
answered by `services.queries` on the app's nats-py connection, described the
same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from events.contract import Accepted, Refused, Signal
from projections.queries import BuurtPicture, IssueHistory
from projections.visibility import IssueView
from services.coordination.broker import build_broker
from services.coordination.intake_handler import INTAKE_CONSUMER, INTAKE_STREAM
from services.coordination.payloads import contract_payload
from services.queries import QUERY_QUEUE, IssueQuestion, IssuesQuestion

DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"
# Where the document says the server is: the default of `buurtbeeld up`.
EXAMPLE_SERVER = "nats://localhost:4222"
COMMANDS_OPERATION = "commands"
REPLY_CHANNEL = "commandsReply"
INTAKE = "intake"
INTAKE_DESCRIPTION = (
    "Signals from partners, published with JetStream on the stream "
    f"{INTAKE_STREAM} with header `Nats-Msg-Id: <org>/<signalRef>`, read in batches by "
    f"the durable pull consumer `{INTAKE_CONSUMER}`. Each signal is processed once, "
    "however often or late it is sent again: it opens an issue, or attaches to the open "
    "issue with the same buurt, category and `location.key`; the events appear under "
    "`events.<buurt>.>`. Anything else is answered on `rejected.<org>`."
)
QUERIES = "queries"
QUERIES_REPLY = "queriesReply"
QUERIES_DESCRIPTION = (
    "The shared picture, by NATS request/reply, as the HTTP API answers it; the "
    "organisation is the subject's and sees what need-to-know lets it see. Questions: "
    "`issues` (`{buurt, status?, owner?, category?, asOf?}`: a buurt's picture, `asOf` "
    "by replay), `issue` and `history` (`{issueId}`). A refusal is "
    '`{"ok": false, "code": ..., "message": ...}` with code not-found, invalid or '
    f"forbidden. Answered by the queue group `{QUERY_QUEUE}`."
)


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document, as JSON-ready data."""
    specification = AsyncAPI(
        build_broker([EXAMPLE_SERVER]).broker,
        title="Buurtbeeld",
        version="1",
        description=(
            "Partner contract version 1 on NATS: publish signals on the INTAKE stream, "
            "hear about rejected ones, and act on issues by request/reply. Issue events "
            "are on the EVENTS stream under events.<buurt>.>; their JSON Schemas are in "
            "events/schemas/."
        ),
        schema_version="3.0.0",
    ).to_specification()
    generated: dict[str, Any] = specification.to_jsonable()
    _add_intake(generated)
    _add_command_replies(generated)
    _add_queries(generated)
    return generated


def render() -> str:
    """The document exactly as checked in (keys sorted: FastStream's order varies)."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(path: Path = DOCUMENT_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    return path


def _add_intake(generated: dict[str, Any]) -> None:
    """The partners' publishing side: what the service receives on INTAKE."""
    components = generated.setdefault("components", {})
    components.setdefault("schemas", {})["Signal"] = contract_payload(Signal).json_schema
    components.setdefault("messages", {})["Signal"] = {
        "title": "Signal",
        "headers": {
            "type": "object",
            "properties": {"Nats-Msg-Id": {"type": "string", "description": "<org>/<signalRef>"}},
            "required": ["Nats-Msg-Id"],
        },
        "payload": {"$ref": "#/components/schemas/Signal"},
    }
    server = next(iter(generated["servers"]))
    generated["channels"][INTAKE] = {
        "address": "intake.{org}.signals",
        "description": INTAKE_DESCRIPTION,
        "servers": [{"$ref": f"#/servers/{server}"}],
        "messages": {"Signal": {"$ref": "#/components/messages/Signal"}},
        "bindings": {"nats": {"subject": "intake.{org}.signals", "bindingVersion": "custom"}},
    }
    generated["operations"][INTAKE] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{INTAKE}"},
        "messages": [{"$ref": f"#/channels/{INTAKE}/messages/Signal"}],
    }


def _add_command_replies(generated: dict[str, Any]) -> None:
    """Each command is answered on the requester's reply subject: Accepted or Refused."""
    components = generated.setdefault("components", {})
    replies = {"Accepted": Accepted, "Refused": Refused}
    for name, kind in replies.items():
        components.setdefault("schemas", {})[name] = contract_payload(kind).json_schema
        components.setdefault("messages", {})[name] = {
            "title": name,
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
    generated["channels"][REPLY_CHANNEL] = {
        "address": None,
        "description": "The reply subject of the request (an inbox, as NATS request/reply sets).",
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in replies},
    }
    generated["operations"][COMMANDS_OPERATION]["reply"] = {
        "channel": {"$ref": f"#/channels/{REPLY_CHANNEL}"},
        "messages": [{"$ref": f"#/channels/{REPLY_CHANNEL}/messages/{name}"} for name in replies],
    }


def _add_queries(generated: dict[str, Any]) -> None:
    """`query.{org}.{question}` and its answers."""
    components = generated.setdefault("components", {})
    questions = {"IssuesQuestion": IssuesQuestion, "IssueQuestion": IssueQuestion}
    answers = {
        "BuurtPicture": BuurtPicture,
        "IssueView": IssueView,
        "IssueHistory": IssueHistory,
        "Refused": Refused,
    }
    for name, kind in {**questions, **answers}.items():
        components.setdefault("schemas", {})[name] = contract_payload(kind).json_schema
        components.setdefault("messages", {})[name] = {
            "title": name,
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
    server = next(iter(generated["servers"]))
    generated["channels"][QUERIES] = {
        "address": "query.{org}.{question}",
        "description": QUERIES_DESCRIPTION,
        "servers": [{"$ref": f"#/servers/{server}"}],
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in questions},
        "bindings": {"nats": {"subject": "query.{org}.{question}", "bindingVersion": "custom"}},
    }
    generated["channels"][QUERIES_REPLY] = {
        "address": None,
        "description": "The reply subject of the request (an inbox, as NATS request/reply sets).",
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in answers},
    }
    generated["operations"][QUERIES] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{QUERIES}"},
        "messages": [{"$ref": f"#/channels/{QUERIES}/messages/{name}"} for name in questions],
        "reply": {
            "channel": {"$ref": f"#/channels/{QUERIES_REPLY}"},
            "messages": [
                {"$ref": f"#/channels/{QUERIES_REPLY}/messages/{name}"} for name in answers
            ],
        },
    }


if __name__ == "__main__":
    print(write())
