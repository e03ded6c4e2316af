"""Every way the domain says no, each with the stable code partners see.

The code is mapped once, to the NATS reply, the HTTP problem+json and the log line.
"""

from __future__ import annotations

from typing import ClassVar

from events.contract.commands import RefusalCode


class Refusal(Exception):
    """A command that the rules do not allow. `code` is part of the contract."""

    code: ClassVar[RefusalCode] = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AlreadyOwned(Refusal):
    code = "already-owned"


class NotOwner(Refusal):
    code = "not-owner"


class NotFound(Refusal):
    code = "not-found"


class InvalidCommand(Refusal):
    code = "invalid"


class Conflict(Refusal):
    code = "conflict"


class Forbidden(Refusal):
    code = "forbidden"
