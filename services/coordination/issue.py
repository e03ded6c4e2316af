"""The Issue aggregate: what the organisations of a buurt coordinate on.

One or more signals about the same thing in the same place; at most one owner
(the organisation with regie). Commands are imperative methods that check the
rules of DOMAIN.md (`check_*`) and then trigger an event named in the past
tense. Each event class has exactly the fields of its public contract type in
`events.contract` (who acted, when, and the issue's buurt and category), so the
stored event is the documented JSON.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import uuid4

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    MetaDomainEvent,
)

from events.contract import SignalRecord
from services.coordination.refusals import AlreadyOwned, Forbidden, InvalidCommand, NotOwner

# `<buurt>.issue.<unique>`, as `Issue.create_id` makes them.
ISSUE_ID = re.compile(r"^BU\d{4}[0-9A-Z]{4}\.issue\.[0-9A-Za-z_-]{1,64}$", re.ASCII)


class Status(StrEnum):
    UNOWNED = "unowned"
    OWNED = "owned"
    HANDOVER_PENDING = "handover-pending"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    MERGED = "merged"


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

    class Event(StrAggregate.Event):
        """Who acted (`organisation`, `actor`), when (`at`), on which buurt and category."""

        buurt: str
        category: str
        organisation: str
        at: datetime
        actor: str | None

    @staticmethod
    def create_id(buurt: str) -> str:
        return f"{buurt}.issue.{uuid4().hex}"

    @staticmethod
    def is_issue_id(text: str) -> bool:
        """Whether `text` has the shape of an issue id (so it names no other aggregate)."""
        return ISSUE_ID.fullmatch(text) is not None

    @classmethod
    def open(
        cls,
        buurt: str,
        category: str,
        sensitivity: str,
        signal: SignalRecord,
        at: datetime,
        actor: str | None = None,
    ) -> Issue:
        """A signal that matched no open issue opens a new, unowned one."""
        return cls._create(
            cls.IssueOpened,
            id=cls.create_id(buurt),
            timestamp=at,
            buurt=buurt,
            category=category,
            organisation=signal.organisation,
            at=at,
            actor=actor,
            sensitivity=sensitivity,
            signal=signal,
        )

    class IssueOpened(Event, StrAggregate.Created):
        sensitivity: str
        signal: SignalRecord

    def __init__(
        self,
        buurt: str,
        category: str,
        organisation: str,
        at: datetime,
        sensitivity: str,
        signal: SignalRecord,
        actor: str | None,
    ) -> None:
        self.buurt = buurt
        self.category = category
        self.sensitivity = sensitivity
        self.location_key = signal.location.key if signal.location else None
        self.opened_at = at
        self.opened_by = organisation
        # Counted, not kept: the signals' content is in the log and the picture.
        self.signal_count = 1
        self.reporters: set[str] = {organisation}
        self.owner: str | None = None
        self.owned_since: datetime | None = None
        # When it last became unowned (opened, released, reopened); None while owned.
        self.unowned_since: datetime | None = at
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

    def ownership_due_at(self, target: timedelta) -> datetime | None:
        """When an unowned issue should have an owner: `target` after it became unowned."""
        return None if self.unowned_since is None else self.unowned_since + target

    def is_overdue(self, now: datetime, due_at: datetime) -> bool:
        """Unowned, open, not yet escalated, and past the target time to ownership."""
        return self.is_open and self.owner is None and not self.escalated and now >= due_at

    # -- commands ----------------------------------------------------------

    def _record(
        self,
        event_class: type[Event],
        organisation: str,
        at: datetime,
        actor: str | None,
        **fields: Any,
    ) -> None:
        self.trigger_event(
            event_class,
            timestamp=at,
            buurt=self.buurt,
            category=self.category,
            organisation=organisation,
            at=at,
            actor=actor,
            **fields,
        )

    def attach_signal(self, signal: SignalRecord, at: datetime, actor: str | None = None) -> None:
        self.check_is_open("attach a signal to")
        self._record(self.SignalAttached, signal.organisation, at, actor, signal=signal)

    class SignalAttached(Event):
        signal: SignalRecord

        def apply(self, issue: Issue) -> None:
            issue.signal_count += 1
            issue.reporters.add(self.organisation)
            issue.last_changed_at = self.at

    def claim(self, organisation: str, at: datetime, actor: str | None = None) -> None:
        self.check_is_open("claim")
        self.check_is_unowned()
        self._record(self.OwnershipClaimed, organisation, at, actor)

    class OwnershipClaimed(Event):
        def apply(self, issue: Issue) -> None:
            issue.owner = self.organisation
            issue.owned_since = self.at
            issue.unowned_since = None
            issue.escalated = False
            issue.last_changed_at = self.at

    def offer_handover(
        self, organisation: str, to: str, at: datetime, actor: str | None = None
    ) -> None:
        self.check_is_open("hand over")
        self.check_is_owner(organisation, "hand over")
        if to == organisation:
            raise InvalidCommand(f"{organisation} already owns {self.id}")
        if self.handover_to is not None:
            raise InvalidCommand(f"{self.id} already has a handover to {self.handover_to} pending")
        self._record(self.HandoverOffered, organisation, at, actor, to=to)

    class HandoverOffered(Event):
        to: str

        def apply(self, issue: Issue) -> None:
            issue.handover_to = self.to
            issue.last_changed_at = self.at

    def accept_handover(self, organisation: str, at: datetime, actor: str | None = None) -> None:
        self.check_handover_is_for(organisation)
        assert self.owner is not None  # a handover is only ever offered by the owner
        self._record(self.HandoverAccepted, organisation, at, actor, previous_owner=self.owner)

    class HandoverAccepted(Event):
        previous_owner: str

        def apply(self, issue: Issue) -> None:
            issue.owner = self.organisation
            issue.owned_since = self.at
            issue.handover_to = None
            issue.last_changed_at = self.at

    def decline_handover(self, organisation: str, at: datetime, actor: str | None = None) -> None:
        self.check_handover_is_for(organisation)
        self._record(self.HandoverDeclined, organisation, at, actor)

    class HandoverDeclined(Event):
        def apply(self, issue: Issue) -> None:
            issue.handover_to = None
            issue.last_changed_at = self.at

    def release(self, organisation: str, at: datetime, actor: str | None = None) -> None:
        self.check_is_open("release")
        self.check_is_owner(organisation, "release")
        self._record(self.OwnershipReleased, organisation, at, actor)

    class OwnershipReleased(Event):
        def apply(self, issue: Issue) -> None:
            issue.owner = None
            issue.owned_since = None
            issue.unowned_since = self.at
            issue.handover_to = None
            issue.last_changed_at = self.at

    def resolve(
        self, organisation: str, resolution: str, at: datetime, actor: str | None = None
    ) -> None:
        self.check_is_open("resolve")
        self.check_is_owner(organisation, "resolve")
        self._record(self.IssueResolved, organisation, at, actor, resolution=resolution)

    class IssueResolved(Event):
        resolution: str

        def apply(self, issue: Issue) -> None:
            issue.closed_as = Status.RESOLVED
            issue.handover_to = None
            issue.last_changed_at = self.at

    def reopen(
        self, organisation: str, reason: str, at: datetime, actor: str | None = None
    ) -> None:
        if self.closed_as is not Status.RESOLVED:
            raise InvalidCommand(f"{self.id} is {self.status}; only a resolved issue is reopened")
        self._record(self.IssueReopened, organisation, at, actor, reason=reason)

    class IssueReopened(Event):
        reason: str

        def apply(self, issue: Issue) -> None:
            issue.closed_as = None
            issue.owner = None
            issue.owned_since = None
            issue.unowned_since = self.at
            issue.escalated = False
            issue.last_changed_at = self.at

    def merge_into(
        self, organisation: str, into: str, at: datetime, actor: str | None = None
    ) -> None:
        self.check_is_open("merge")
        if into == self.id:
            raise InvalidCommand(f"{self.id} cannot be merged into itself")
        if self.owner is not None:
            self.check_is_owner(organisation, "merge")
        self._record(self.IssueMerged, organisation, at, actor, into=into)

    class IssueMerged(Event):
        into: str

        def apply(self, issue: Issue) -> None:
            issue.closed_as = Status.MERGED
            issue.handover_to = None
            issue.last_changed_at = self.at

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
        self._record(
            self.IssueAbsorbed,
            organisation,
            at,
            actor,
            merged=merged,
            signal_count=signal_count,
            reporters=reporters,
        )

    class IssueAbsorbed(Event):
        merged: str
        signal_count: int
        reporters: list[str]

        def apply(self, issue: Issue) -> None:
            issue.signal_count += self.signal_count
            issue.reporters.update(self.reporters)
            issue.last_changed_at = self.at

    def escalate(self, organisation: str, due_at: datetime, at: datetime) -> None:
        """`organisation` is the system escalating (the coordination service)."""
        if not self.is_overdue(at, due_at):
            raise InvalidCommand(f"{self.id} is not overdue for ownership")
        self._record(self.IssueEscalated, organisation, at, None, due_at=due_at)

    class IssueEscalated(Event):
        due_at: datetime

        def apply(self, issue: Issue) -> None:
            issue.escalated = True

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
