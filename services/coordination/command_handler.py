"""Commands on NATS: `cmd.<org>.<verb>` request/reply, answered as CONTRACT.md says.

decode → `Coordination.handle` in a worker thread → the `Accepted` reply, or the
refusal mapped by `replies.refused`. Whatever the request holds, it gets a reply.
"""

from __future__ import annotations

import anyio.to_thread
import msgspec
import structlog
from eventsourcing.persistence import OperationalError

from events.contract import COMMANDS, Accepted, Command
from events.contract.codec import decode_command, encode
from services.coordination.application import Coordination
from services.coordination.refusals import Conflict, Forbidden, InvalidCommand, Refusal
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
            accepted = await self.act(organisation, verb, body, subject=subject)
        except Refusal as refusal:
            return encode(refused(refusal))
        return encode(accepted)

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

    def _command(self, organisation: str, verb: str, body: bytes) -> Command:
        """The decoded command, once the organisation is known; or a `Refusal`."""
        if organisation not in self.coordination.organisations:
            raise Forbidden(f"{organisation[:32]!r} is not in the organisations file")
        if verb not in COMMANDS:
            raise InvalidCommand(f"{verb[:32]!r} is not a verb: use one of {', '.join(COMMANDS)}")
        try:
            return decode_command(verb, body)
        except UnicodeDecodeError:
            raise InvalidCommand("the body is not valid UTF-8") from None
        except RecursionError:
            raise InvalidCommand("the body is nested too deeply") from None
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise InvalidCommand(f"not a valid {verb} command: {e}") from None
