"""The coordination service's NATS edge, declared with FastStream.

- `cmd.{org}.{verb}`: commands on issues, request/reply;
- `rejected.{org}`: what intake could not accept, with the reasons.

(`intake.{org}.signals` is read by the durable pull consumer of `intake_pull`,
on a connection and thread of its own: `intake_thread`.) `build_broker` only
declares, no I/O; the command handler finds its collaborator in the broker's
context (`COMMANDS_HANDLER`), which the service sets before starting it. The
AsyncAPI document is generated from the same declarations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from faststream import Context
from faststream.message import StreamMessage
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from faststream.nats.publisher.usecase import LogicPublisher
from pydantic import Field

from events.contract import COMMANDS, Rejection
from services.coordination.command_handler import CommandHandler
from services.coordination.payloads import contract_payload, contract_payloads

COMMANDS_HANDLER = "commands"
# How long stopping waits for the command in hand.
GRACEFUL_TIMEOUT = 30.0

REJECTED_DESCRIPTION = (
    "A signal that was not accepted: invalid JSON, missing or malformed fields, unknown "
    "category, malformed or unknown buurt, an organisation that is not in the "
    "organisations file or not active in the buurt. `signalRef` is null when it could "
    "not be read. Core NATS: subscribe before publishing. A signal that is delivered "
    "again after a crash of the service may be answered twice."
)
COMMANDS_DESCRIPTION = (
    "A command on an issue, by NATS request/reply; the organisation is the subject's. "
    "Verbs: claim, release, handover (`to`), accept-handover, decline-handover, resolve "
    "(`resolution`), reopen (`reason`), merge (`into`). The reply is "
    '`{"ok": true, "issueId": ..., "version": n}` or `{"ok": false, "code": ..., '
    '"message": ...}` with code already-owned, not-owner, not-found, invalid, conflict '
    "or forbidden. And `forget-personal-data` (`subjectRef`, or `reporter` with name "
    "and phone): the organisation's data subject is forgotten, their personal data "
    'unreadable everywhere in the log; reply `{"ok": true, "forgotten": true|false}`.'
)

CommandBody = Annotated[bytes, contract_payloads(COMMANDS), Field(title="Command")]
RejectionBody = Annotated[bytes, contract_payload(Rejection), Field(title="Rejection")]


@dataclass(frozen=True)
class CoordinationBroker:
    """The FastStream broker, and the publisher intake answers rejections with."""

    broker: NatsBroker
    rejected: LogicPublisher

    async def publish_rejection(self, subject: str, body: bytes) -> None:
        await self.rejected.publish(body, subject=subject)


def build_broker(servers: Sequence[str], *, connect_timeout: int = 5) -> CoordinationBroker:
    """Declare the coordination service's subscribers and publisher on a new broker."""
    broker = NatsBroker(
        list(servers),
        name="buurtbeeld-coordination",
        connect_timeout=connect_timeout,
        max_reconnect_attempts=-1,
        graceful_timeout=GRACEFUL_TIMEOUT,
        logger=_faststream_logger(),
        description="Buurtbeeld's partner interface on NATS (contract version 1).",
    )
    rejected = broker.publisher(
        "rejected.{org}",
        title="rejected",
        description=REJECTED_DESCRIPTION,
        schema=RejectionBody,
    )

    @broker.subscriber(
        "cmd.{org}.{verb}", decoder=_body, title="commands", description=COMMANDS_DESCRIPTION
    )
    async def act_on_issue(
        command: CommandBody,
        message: NatsMessage,
        commands: Annotated[CommandHandler, Context(COMMANDS_HANDLER)],
    ) -> bytes:
        """One request on `cmd.<org>.<verb>`; the reply body is returned."""
        return await commands.reply(message.raw_message.subject, command)

    return CoordinationBroker(broker=broker, rejected=rejected)


def _faststream_logger() -> logging.Logger:
    """FastStream's own lines, through our logging; only its warnings and errors.

    Our handlers log every message with what became of it; FastStream's per-message
    and task lines would repeat that. (Its own "faststream" logger bypasses ours.)
    """
    logger = logging.getLogger("services.coordination.faststream")
    logger.setLevel(logging.WARNING)
    return logger


async def _body(message: StreamMessage[Any]) -> bytes:
    """The body as it came: decoding it is the handler's job."""
    body: bytes = message.body
    return body
