"""The open issues, in memory: what intake matches signals against and escalation scans.

Rebuilt on start by following the event log from its beginning, and kept
current by following it further (`follow`) and by the application's own saves
(`put`). It holds each open issue's state compactly (`HeldIssue`: what the
rules need, no signal content), so matching, attaching and escalating read
nothing from the store; `get` makes the `Issue` aggregate to act on. A stale
one costs a concurrency clash when it is saved (the store refuses a version
that exists), never a wrong write.

Idempotency is not kept here: a re-sent signal clashes with its receipt in the
store (`Receipt`), however late it comes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from services.coordination.held_issue import HeldIssue
from services.coordination.issue import Issue

# (buurt, category, location key): signals about one place attach to one issue.
Place = tuple[str, str, str]
# The issue as stored now, or None when there is none.
Loader = Callable[[str], Issue | None]

# Only these events can make an issue the index does not hold an open one.
_OPENING = ("IssueOpened", "IssueReopened")


class OpenIssues:
    """Open issues by id, and the ids of those with a location key by place."""

    def __init__(self) -> None:
        self._issues: dict[str, HeldIssue] = {}
        self._at_place: dict[Place, list[str]] = {}

    def __len__(self) -> int:
        return len(self._issues)

    def __iter__(self) -> Iterator[Issue]:
        """Every open issue, as an aggregate (made for the occasion: for tests and tools)."""
        return (held.issue() for held in list(self._issues.values()))

    def held(self) -> list[HeldIssue]:
        """Every open issue as held (for a snapshot: `services.coordination.index_snapshot`)."""
        return list(self._issues.values())

    def restore(self, held: Iterable[HeldIssue]) -> None:
        """Hold exactly `held` (from a snapshot), nothing else."""
        self._issues.clear()
        self._at_place.clear()
        for issue in held:
            issue = issue.compact()
            self._issues[issue.id] = issue
            place = issue.place
            if place is not None:
                self._at_place.setdefault(place, []).append(issue.id)

    def get(self, issue_id: str) -> Issue | None:
        """The open issue `issue_id` as an aggregate to act on; None if not held."""
        held = self._issues.get(issue_id)
        return None if held is None else held.issue()

    def maybe_overdue(
        self, at: datetime, target: Callable[[str], timedelta | None]
    ) -> Iterator[Issue]:
        """The open issues `Issue.is_overdue` may hold for at `at`: unowned, not
        escalated, unowned for longer than their category's `target` (None: none).

        Only those are made into aggregates: escalation scans every open issue
        while intake waits for it.
        """
        candidates = []
        for held in self._issues.values():
            if not held.may_be_overdue:
                continue
            wait = target(held.category)
            if (
                wait is not None
                and held.unowned_since is not None
                and held.unowned_since + wait <= at
            ):
                candidates.append(held)
        return (held.issue() for held in candidates)

    def match(
        self, buurt: str, category: str, location_key: str | None, at: datetime, window: timedelta
    ) -> Issue | None:
        """The open issue a signal about this place at `at` attaches to, if any.

        When several match (an older one changed recently), the most recently changed.
        """
        if location_key is None:
            return None
        ids = self._at_place.get((buurt, category, location_key))
        if not ids:
            return None
        here = (self._issues[i].issue() for i in ids)
        matching = [i for i in here if i.matches(buurt, category, location_key, at, window)]
        return max(matching, key=lambda issue: issue.last_changed_at, default=None)

    def put(self, issue: Issue) -> None:
        """Hold `issue` as it is now, unless a later version is held; a closed one is dropped."""
        known = self._issues.get(issue.id)
        if known is not None and known.version > issue.version:
            return
        if not issue.is_open:
            self.forget(issue.id)
            return
        held = HeldIssue.of(issue)
        if known is None:
            place = held.place
            if place is not None:
                self._at_place.setdefault(place, []).append(held.id)
        self._issues[held.id] = held

    def forget(self, issue_id: str) -> None:
        held = self._issues.pop(issue_id, None)
        if held is None:
            return
        place = held.place
        if place is None:
            return
        ids = self._at_place[place]
        ids.remove(issue_id)
        if not ids:
            del self._at_place[place]

    def reload(self, issue_id: str, load: Loader) -> None:
        """Replace what is held of an issue with what is stored (after a failed save, say)."""
        self.forget(issue_id)
        issue = load(issue_id)
        if issue is not None:
            self.put(issue)

    def wants(self, originator_id: str, version: int, topic: str) -> bool:
        """Whether a stored event (by id, version and contract type) is news here.

        Cheap, so the log can be followed without decoding what changes nothing:
        receipts, events of closed issues, events already applied.
        """
        known = self._issues.get(originator_id)
        if known is not None:
            return version > known.version
        return topic in _OPENING

    def follow(self, event: Issue.Event, load: Loader) -> None:
        """Bring the index up to date with one stored event, in log order."""
        known = self._issues.get(event.originator_id)
        if known is None:
            if isinstance(event, Issue.IssueOpened):
                opened = event.mutate(None)
                assert isinstance(opened, Issue)
                self.put(opened)
            elif isinstance(event, Issue.IssueReopened):
                self.reload(event.originator_id, load)
        elif event.originator_version == known.version + 1:
            changed = event.mutate(known.issue())
            assert isinstance(changed, Issue)
            self.put(changed)
        elif event.originator_version > known.version:
            self.reload(event.originator_id, load)
