"""An open issue as the open-issue index holds it: `HeldIssue`, compact, and back.

The index keeps tens of thousands of open issues for as long as the service
runs. A whole `Issue` aggregate is an object with an instance dict, a set of
reporters and a list of pending events, and repeats strings every issue shares
(buurt, category, organisations). A `HeldIssue` has the same state in a tuple,
its strings interned, its reporters a tuple, and equal timestamps stored once;
`issue()` makes the aggregate again, exactly as it was (the unit tests compare
their `vars`), for intake and escalation to act on.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import NamedTuple

from services.coordination.issue import Issue, Status


def _intern(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def _shared(value: datetime | None, candidate: datetime | None) -> datetime | None:
    """`candidate` if it stands for the same moment as `value`, written the same way."""
    if value is None or candidate is None or value is candidate:
        return value
    if value == candidate and value.tzinfo == candidate.tzinfo:
        return candidate
    return value


class HeldIssue(NamedTuple):
    """The state of one `Issue`, as it is after its last stored event (immutable:
    a change is a new one)."""

    id: str
    version: int
    created_on: datetime
    modified_on: datetime
    buurt: str
    category: str
    sensitivity: str
    location_key: str | None
    opened_at: datetime
    opened_by: str
    signal_count: int
    reporters: tuple[str, ...]
    owner: str | None
    owned_since: datetime | None
    unowned_since: datetime | None
    handover_to: str | None
    escalated: bool
    closed_as: Status | None
    last_changed_at: datetime

    @classmethod
    def of(cls, issue: Issue) -> HeldIssue:
        """`issue` without its pending events (held issues are saved ones)."""
        return cls(
            id=issue.id,
            version=issue.version,
            created_on=issue.created_on,
            modified_on=issue.modified_on,
            buurt=issue.buurt,
            category=issue.category,
            sensitivity=issue.sensitivity,
            location_key=issue.location_key,
            opened_at=issue.opened_at,
            opened_by=issue.opened_by,
            signal_count=issue.signal_count,
            reporters=tuple(sorted(issue.reporters)),
            owner=issue.owner,
            owned_since=issue.owned_since,
            unowned_since=issue.unowned_since,
            handover_to=issue.handover_to,
            escalated=issue.escalated,
            closed_as=issue.closed_as,
            last_changed_at=issue.last_changed_at,
        ).compact()

    def compact(self) -> HeldIssue:
        """The same, its strings interned and equal timestamps stored once (also for
        one read back from a snapshot, where each is an object of its own)."""
        changed = self.last_changed_at
        opened_at = _shared(self.opened_at, changed) or self.opened_at
        return self._replace(
            created_on=_shared(self.created_on, opened_at) or opened_at,
            modified_on=_shared(self.modified_on, changed) or changed,
            buurt=sys.intern(self.buurt),
            category=sys.intern(self.category),
            sensitivity=sys.intern(self.sensitivity),
            location_key=_intern(self.location_key),
            opened_at=opened_at,
            opened_by=sys.intern(self.opened_by),
            reporters=tuple(sys.intern(r) for r in self.reporters),
            owner=_intern(self.owner),
            owned_since=_shared(self.owned_since, changed),
            unowned_since=_shared(self.unowned_since, changed),
            handover_to=_intern(self.handover_to),
        )

    def issue(self) -> Issue:
        """The aggregate again, at this version, with no pending events."""
        issue = Issue.__new__(Issue)
        state = vars(issue)
        state["_id"] = self.id
        state["_version"] = self.version
        state["_created_on"] = self.created_on
        state["_modified_on"] = self.modified_on
        state["_pending_events"] = []
        state["buurt"] = self.buurt
        state["category"] = self.category
        state["sensitivity"] = self.sensitivity
        state["location_key"] = self.location_key
        state["opened_at"] = self.opened_at
        state["opened_by"] = self.opened_by
        state["signal_count"] = self.signal_count
        state["reporters"] = set(self.reporters)
        state["owner"] = self.owner
        state["owned_since"] = self.owned_since
        state["unowned_since"] = self.unowned_since
        state["handover_to"] = self.handover_to
        state["escalated"] = self.escalated
        state["closed_as"] = self.closed_as
        state["last_changed_at"] = self.last_changed_at
        return issue

    @property
    def may_be_overdue(self) -> bool:
        """Unowned and not escalated: whether `Issue.is_overdue` can be true at some time."""
        return self.owner is None and not self.escalated and self.unowned_since is not None

    @property
    def place(self) -> tuple[str, str, str] | None:
        """(buurt, category, location key), or None without a location key."""
        if self.location_key is None:
            return None
        return (self.buurt, self.category, self.location_key)
