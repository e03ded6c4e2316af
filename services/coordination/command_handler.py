"""Commands on NATS: `cmd.<org>.<verb>` request/reply, answered as CONTRACT.md says.

decode → `Coordination.handle` in a worker thread → the `Accepted` reply, or the
refusal mapped by `replies.refused`. Whatever the request holds, it gets a reply.
"""

from __future__ import annotations

import anyio.to_thread
import structlog
from eventsourcing.persistence import OperationalError

from events.contract import (
    COMMANDS,
    FORGET_PERSONAL_DATA,
    Accepted,
    Command,
    PersonalDataForgotten,
)
from events.contract.codec import decode_command, encode, forget_decoder
from services.coordination.application import Coordination
from services.coordination.refusals import Conflict, Forbidden, InvalidCommand, Refusal, decoded
from services.coordination.replies import refused

log = structlog.get_logger(__name__)

COMMAND_SUBJECT = "cmd.*.*"


class CommandHandler:
    """Answers one request on `cmd.<org>.<verb>` with the contract's reply."""

    def __init__(self, coordination: Coordination) -> None:
        self.coordination = coordination

    async def reply(self, subject: str, body: bytes) -> bytes:
        """The reply body for the request `body` on `subject`."""
        _, organisation, verb = subject.split(".", 2)
        try:
            if verb == FORGET_PERSONAL_DATA:
                return encode(await self.forget(organisation, body, subject=subject))
            accepted = await self.act(organisation, verb, body, subject=subject)
        except Refusal as refusal:
            return encode(refused(refusal))
        return encode(accepted)

    async def forget(self, organisation: str, body: bytes, **context: str) -> PersonalDataForgotten:
        """Forget the data subject `body` names (`ForgetPersonalData`), or raise a `Refusal`.

        The log line names no subject: their reference is personal data too.
        """
        where = {**context, "organisation": organisation, "verb": FORGET_PERSONAL_DATA}
        try:
            self._known(organisation)
            command = decoded(
                lambda: forget_decoder.decode(body), f"not a valid {FORGET_PERSONAL_DATA} command"
            )
            if (command.subject_ref is None) == (command.reporter is None):
                raise InvalidCommand("name either a subjectRef or a reporter (not both)")
            forgotten: bool = await anyio.to_thread.run_sync(
                lambda: self.coordination.personal_data.forget(
                    organisation, subject_ref=command.subject_ref, reporter=command.reporter
                )
            )
        except Refusal as refusal:
            log.info("command.refused", **where, code=refusal.code, message=refusal.message)
            raise
        except OperationalError as e:
            log.warning("command.failed", **where, error=str(e))
            raise Conflict(f"the keys of personal data could not be reached: {e}") from None
        log.info("personal_data.forgotten", **where, forgotten=forgotten, actor=command.actor)
        return PersonalDataForgotten(forgotten=forgotten)

    async def act(self, organisation: str, verb: str, body: bytes, **context: str) -> Accepted:
        """Carry out the command `body` of `verb` for `organisation`, or raise a `Refusal`.

        The one way in for commands, from NATS and HTTP alike; `context` (the subject,
        or the HTTP path) goes into the log line.
        """
        where = {**context, "organisation": organisation, "verb": verb}
        try:
            command = self._command(organisation, verb, body)
            accepted: Accepted = await anyio.to_thread.run_sync(
                self.coordination.handle, organisation, verb, command
            )
        except Refusal as refusal:
            log.info("command.refused", **where, code=refusal.code, message=refusal.message)
            raise
        except OperationalError as e:  # the event store is unreachable: worth trying again
            log.warning("command.failed", **where, error=str(e))
            raise Conflict(f"the event store could not be reached: {e}") from None
        log.info("command.accepted", **where, issue_id=accepted.issue_id, version=accepted.version)
        return accepted

    def _known(self, organisation: str) -> None:
        if organisation not in self.coordination.organisations:
            raise Forbidden(f"{organisation[:32]!r} is not in the organisations file")

    def _command(self, organisation: str, verb: str, body: bytes) -> Command:
        """The decoded command, once the organisation is known; or a `Refusal`."""
        self._known(organisation)
        if verb not in COMMANDS:
            verbs = ", ".join([*COMMANDS, FORGET_PERSONAL_DATA])
            raise InvalidCommand(f"{verb[:32]!r} is not a verb: use one of {verbs}")
        return decoded(lambda: decode_command(verb, body), f"not a valid {verb} command")
