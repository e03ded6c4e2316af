"""A refusal as partners get it back: mapped here once, for NATS request/reply and HTTP."""

from __future__ import annotations

from events.contract import Refused
from services.coordination.refusals import Refusal

# What a refusal's message may carry at most; partners' input is quoted in some.
MAX_MESSAGE_LENGTH = 500


def refused(refusal: Refusal) -> Refused:
    """The contract's `{"ok": false, "code": ..., "message": ...}` for `refusal`."""
    return Refused(code=refusal.code, message=refusal.message[:MAX_MESSAGE_LENGTH])
