"""The open issues, in memory: what intake matches signals against and escalation scans.

Rebuilt on start by following the event log from its beginning, and kept
current by following it further (`follow`) and by the application's own saves
(`put`). It holds the Issue aggregates themselves, so matching, attaching and
escalating read nothing from the store. A stale one costs a concurrency clash
when it is saved (the store refuses a version that exists), never a wrong write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

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
        self._issues: dict[str, Issue] = {}
        self._at_place: dict[Place, list[str]] = {}

    def __len__(self) -> int:
        return len(self._issues)

    def __iter__(self) -> Iterator[Issue]:
        return iter(list(self._issues.values()))

    def get(self, issue_id: str) -> Issue | None:
        return self._issues.get(issue_id)

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
        if len(ids) == 1:  # the usual case
            only = self._issues[ids[0]]
            return only if only.matches(buurt, category, location_key, at, window) else None
        here = (self._issues[i] for i in ids)
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
        if known is None and issue.location_key is not None:
            self._at_place.setdefault(_place(issue), []).append(issue.id)
        self._issues[issue.id] = issue

    def forget(self, issue_id: str) -> None:
        issue = self._issues.pop(issue_id, None)
        if issue is None or issue.location_key is None:
            return
        place = _place(issue)
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
            changed = event.mutate(known)
            assert isinstance(changed, Issue)
            self.put(changed)
        elif event.originator_version > known.version:
            self.reload(event.originator_id, load)


def _place(issue: Issue) -> Place:
    assert issue.location_key is not None
    return (issue.buurt, issue.category, issue.location_key)
