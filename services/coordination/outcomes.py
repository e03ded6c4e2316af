"""What intake did with each signal, for the edge to acknowledge or reject."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OutcomeKind(StrEnum):
    OPENED = "opened"  # it opened a new issue
    ATTACHED = "attached"  # it attached to a matching open issue
    DUPLICATE = "duplicate"  # this `<org>/<signalRef>` was processed before: nothing changed
    REFUSED = "refused"  # the registries say no: answer on `rejected.<org>` with the reasons


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """One signal's fate. `issue_id` is None only when it was refused."""

    organisation: str
    signal_ref: str
    kind: OutcomeKind
    issue_id: str | None = None
    reasons: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        """Opened, attached, or already processed before: nothing to reject."""
        return self.kind is not OutcomeKind.REFUSED
