"""The Issue aggregate: what the organisations of a buurt coordinate on.

One or more signals about the same thing in the same place; at most one owner
(the organisation with regie). Every rule of the lifecycle in DOMAIN.md is a
`check_*` method; every command is an event named in the past tense, carrying
who acted and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import uuid4

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    MetaDomainEvent,
    event,
)

from services.coordination.refusals import AlreadyOwned, Forbidden, InvalidCommand, NotOwner


class Status(StrEnum):
    UNOWNED = "unowned"
    OWNED = "owned"
    HANDOVER_PENDING = "handover-pending"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    MERGED = "merged"


@dataclass(frozen=True)
class SignalNote:
    """A signal as the issue remembers it (personal data stays in the event log)."""

    signal_ref: str
    organisation: str
    summary: str
    observed_at: datetime
    location_key: str | None = None


class StrAggregate(BaseAggregate[str]):
    """Like the library's `Aggregate`, for string ids (its `DomainEvent` wants UUIDs)."""

    class Event(CanMutateAggregate[str], metaclass=MetaDomainEvent):
        originator_id: str
        originator_version: int
        timestamp: datetime

    class Created(Event, CanInitAggregate[str]):
        originator_topic: str


class Issue(StrAggregate):
    """An issue in one buurt and category, at one location key."""

    @staticmethod
    def create_id(buurt: str) -> str:
        return f"{buurt}.issue.{uuid4().hex}"

    @event("IssueOpened")
    def __init__(
        self,
        buurt: str,
        category: str,
        sensitivity: str,
        signal: SignalNote,
        at: datetime,
        actor: str | None = None,
    ) -> None:
        self.buurt = buurt
        self.category = category
        self.sensitivity = sensitivity
        self.location_key = signal.location_key
        self.opened_at = at
        self.opened_by = signal.organisation
        self.signals: list[SignalNote] = [signal]
        self.absorbed_signal_count = 0
        self.reporters: set[str] = {signal.organisation}
        self.owner: str | None = None
        self.owned_since: datetime | None = None
        self.handover_to: str | None = None
        self.escalated = False
        self.closed_as: Status | None = None
        self.last_changed_at = at

    # -- reading -----------------------------------------------------------

    @property
    def status(self) -> Status:
        if self.closed_as is not None:
            return self.closed_as
        if self.handover_to is not None:
            return Status.HANDOVER_PENDING
        if self.owner is not None:
            return Status.OWNED
        return Status.ESCALATED if self.escalated else Status.UNOWNED

    @property
    def is_open(self) -> bool:
        return self.closed_as is None

    @property
    def signal_count(self) -> int:
        return len(self.signals) + self.absorbed_signal_count

    def matches(
        self, buurt: str, category: str, location_key: str | None, at: datetime, window: timedelta
    ) -> bool:
        """Whether a new signal is about this issue: open, same place, recent enough."""
        return (
            self.is_open
            and location_key is not None
            and (self.buurt, self.category, self.location_key) == (buurt, category, location_key)
            and at - self.last_changed_at <= window
        )

    # -- commands ----------------------------------------------------------

    @event("SignalAttached")
    def attach_signal(self, signal: SignalNote, at: datetime, actor: str | None = None) -> None:
        self.check_is_open("attach a signal to")
        self.signals.append(signal)
        self.reporters.add(signal.organisation)
        self.last_changed_at = at

    @event("OwnershipClaimed")
    def claim(self, organisation: str, at: datetime, actor: str | None = None) -> None:
        self.check_is_open("claim")
        self.check_is_unowned()
        self.owner = organisation
        self.owned_since = at
        self.escalated = False
        self.last_changed_at = at

    @event("HandoverOffered")
    def offer_handover(
        self, organisation: str, to: str, at: datetime, actor: str | None = None
    ) -> None:
        self.check_is_open("hand over")
        self.check_is_owner(organisation, "hand over")
        if to == organisation:
            raise InvalidCommand(f"{organisation} already owns {self.id}")
        if self.handover_to is not None:
            raise InvalidCommand(f"{self.id} already has a handover to {self.handover_to} pending")
        self.handover_to = to
        self.last_changed_at = at

    @event("HandoverAccepted")
    def accept_handover(self, organisation: str, at: datetime, actor: str | None = None) -> None:
        self.check_handover_is_for(organisation)
        self.owner = organisation
        self.owned_since = at
        self.handover_to = None
        self.last_changed_at = at

    @event("HandoverDeclined")
    def decline_handover(self, organisation: str, at: datetime, actor: str | None = None) -> None:
        self.check_handover_is_for(organisation)
        self.handover_to = None
        self.last_changed_at = at

    @event("OwnershipReleased")
    def release(self, organisation: str, at: datetime, actor: str | None = None) -> None:
        self.check_is_open("release")
        self.check_is_owner(organisation, "release")
        self.owner = None
        self.owned_since = None
        self.handover_to = None
        self.last_changed_at = at

    @event("IssueResolved")
    def resolve(
        self, organisation: str, resolution: str, at: datetime, actor: str | None = None
    ) -> None:
        self.check_is_open("resolve")
        self.check_is_owner(organisation, "resolve")
        self.closed_as = Status.RESOLVED
        self.handover_to = None
        self.last_changed_at = at

    @event("IssueReopened")
    def reopen(
        self, organisation: str, reason: str, at: datetime, actor: str | None = None
    ) -> None:
        if self.closed_as is not Status.RESOLVED:
            raise InvalidCommand(f"{self.id} is {self.status}; only a resolved issue is reopened")
        self.closed_as = None
        self.owner = None
        self.owned_since = None
        self.escalated = False
        self.last_changed_at = at

    @event("IssueMerged")
    def merge_into(
        self, organisation: str, into: str, at: datetime, actor: str | None = None
    ) -> None:
        self.check_is_open("merge")
        if into == self.id:
            raise InvalidCommand(f"{self.id} cannot be merged into itself")
        if self.owner is not None:
            self.check_is_owner(organisation, "merge")
        self.closed_as = Status.MERGED
        self.handover_to = None
        self.last_changed_at = at

    @event("IssueAbsorbed")
    def absorb(
        self,
        organisation: str,
        merged: str,
        signal_count: int,
        reporters: list[str],
        at: datetime,
        actor: str | None = None,
    ) -> None:
        self.check_is_open("merge into")
        self.absorbed_signal_count += signal_count
        self.reporters.update(reporters)
        self.last_changed_at = at

    @event("IssueEscalated")
    def escalate(self, due_at: datetime, at: datetime) -> None:
        if not self.is_overdue(at, due_at):
            raise InvalidCommand(f"{self.id} is not overdue for ownership")
        self.escalated = True

    def is_overdue(self, now: datetime, due_at: datetime) -> bool:
        """Unowned, open, not yet escalated, and past the target time to ownership."""
        return self.is_open and self.owner is None and not self.escalated and now >= due_at

    # -- rules -------------------------------------------------------------

    def check_is_open(self, what: str) -> None:
        if self.closed_as is not None:
            raise InvalidCommand(f"cannot {what} {self.id}: it is {self.closed_as}")

    def check_is_unowned(self) -> None:
        if self.owner is not None:
            raise AlreadyOwned(f"{self.id} is already owned by {self.owner}")

    def check_is_owner(self, organisation: str, what: str) -> None:
        if self.owner != organisation:
            owner = f"owned by {self.owner}" if self.owner else "unowned"
            raise NotOwner(f"{organisation} cannot {what} {self.id}: it is {owner}")

    def check_handover_is_for(self, organisation: str) -> None:
        if self.handover_to is None:
            raise InvalidCommand(f"{self.id} has no pending handover")
        if self.handover_to != organisation:
            raise Forbidden(
                f"the handover of {self.id} is offered to {self.handover_to}, not {organisation}"
            )
