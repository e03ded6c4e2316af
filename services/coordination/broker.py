"""The coordination service's NATS interface, declared with FastStream.

- `intake.{org}.signals`: the INTAKE stream, read in batches by the durable pull
  consumer `coordination` (manual acks: `IntakeConsumer` decides);
- `rejected.{org}`: what intake could not accept, with the reasons;
- `cmd.{org}.{verb}`: commands on issues, request/reply.

`build_broker` only declares (no I/O); the handlers find their collaborators in
the broker's context (`INTAKE`, `COMMANDS`), which the service sets before
starting it. The AsyncAPI document is generated from the same declarations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from faststream import Context
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import JsClient, NatsMessage
from faststream.nats.message import NatsBatchMessage
from faststream.nats.publisher.usecase import LogicPublisher
from pydantic import Field

from events.contract import COMMANDS, Rejection, Signal
from services.coordination.application import MAX_SIGNALS_PER_SAVE
from services.coordination.command_handler import CommandHandler
from services.coordination.intake_handler import INTAKE_CONSUMER, INTAKE_STREAM, IntakeConsumer
from services.coordination.payloads import contract_payload, contract_payloads

INTAKE = "intake"
COMMANDS_HANDLER = "commands"
# One batch is one atomic save; a short wait for a fuller batch keeps latency low.
INTAKE_BATCH_SIZE = MAX_SIGNALS_PER_SAVE
INTAKE_BATCH_WAIT = 0.1
# How long stopping waits for the batch or command in hand.
GRACEFUL_TIMEOUT = 30.0

INTAKE_DESCRIPTION = (
    "Signals from partners, published with JetStream on the INTAKE stream with header "
    "`Nats-Msg-Id: <org>/<signalRef>`, read in batches by the durable pull consumer "
    "`coordination`. Each signal is processed once, however often or late it is sent "
    "again: it opens an issue, or attaches to the open issue with the same buurt, "
    "category and `location.key`; the events appear under `events.<buurt>.>`. "
    "Anything else is answered on `rejected.<org>`."
)
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
    "or forbidden."
)

SignalBodies = Annotated[list[bytes], contract_payload(Signal), Field(title="Signal")]
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
        "intake.{org}.signals",
        stream=JStream(INTAKE_STREAM, declare=False),
        durable=INTAKE_CONSUMER,
        pull_sub=PullSub(batch_size=INTAKE_BATCH_SIZE, timeout=INTAKE_BATCH_WAIT, batch=True),
        ack_policy=AckPolicy.MANUAL,
        decoder=_bodies,
        title="intake",
        description=INTAKE_DESCRIPTION,
    )
    async def receive_signals(
        signals: SignalBodies,
        batch: Annotated[NatsBatchMessage, Context("message")],
        js: JsClient,
        intake: Annotated[IntakeConsumer, Context(INTAKE)],
    ) -> None:
        """One batch from the INTAKE consumer, to intake."""
        await intake.receive(batch.raw_message, js)

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


async def _bodies(message: StreamMessage[Any]) -> list[bytes]:
    """A batch's bodies as they came: decoding them is the handler's job."""
    return [msg.data for msg in message.raw_message]


async def _body(message: StreamMessage[Any]) -> bytes:
    body: bytes = message.body
    return body
