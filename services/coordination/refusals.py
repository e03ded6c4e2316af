"""Every way the domain says no, each with the stable code partners see.

The code is mapped once, to the NATS reply, the HTTP problem+json and the log line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

import msgspec

from events.contract.commands import RefusalCode

T = TypeVar("T")


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


def decoded(decode: Callable[[], T], refused_as: str) -> T:
    """What `decode` makes of a request's body, or the `InvalidCommand` saying why it
    could not (`refused_as`, then the decoder's reason)."""
    try:
        return decode()
    except UnicodeDecodeError:
        raise InvalidCommand("the body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidCommand("the body is nested too deeply") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise InvalidCommand(f"{refused_as}: {e}") from None
