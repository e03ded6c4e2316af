"""One kept buurt's open issues, each with its encoded views (`BuurtIssues`, `OpenIssue`).

What `LiveBuurten` keeps per buurt: per open issue what need-to-know, the
filters and the picture's order read, and its views as JSON with and without
content (`Visibility.encoded_view`), made once per version of the issue; and a
memo for what answers work out from them, emptied by every change.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.picture import STATUS_RANK, IssueRow
from projections.visibility import EncodedView, Visibility

# Python objects around one issue's encoded views (slots, tuples, strings), measured.
ISSUE_OVERHEAD_BYTES = 600
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def microseconds(moment: datetime) -> int:
    """`moment` as whole microseconds since 1970: exact, unlike a float timestamp."""
    return (moment - EPOCH) // MICROSECOND


@dataclass(slots=True, eq=False)
class OpenIssue:
    """One open issue of a kept buurt: what need-to-know, filters and order read, and its views."""

    id: str
    buurt: str
    category: str
    group: str
    sensitivity: str
    owner: str | None
    reporters: tuple[str, ...]
    status: str
    handover_to: str | None
    version: int
    # picture_order's key, with the opening moment in microseconds.
    order: tuple[int, int, str]
    opened_us: int
    # The view with content; the one without, for a `vertrouwelijk` issue only
    # (an `open` one shows its content to everyone who sees it).
    content: EncodedView
    bare: EncodedView | None
    size: int

    @classmethod
    def of(cls, row: IssueRow, visibility: Visibility) -> OpenIssue:
        content = visibility.encoded_view(row, content=True)
        bare = None if row.sensitivity == "open" else visibility.encoded_view(row, content=False)
        opened_us = microseconds(row.opened_at)
        size = ISSUE_OVERHEAD_BYTES + len(content.head) + len(content.tail)
        if bare is not None:
            size += len(bare.head) + len(bare.tail)
        intern = sys.intern
        return cls(
            id=row.id,
            buurt=intern(row.buurt),
            category=intern(row.category),
            group=intern(visibility.category_group(row.category)),
            sensitivity=intern(row.sensitivity),
            owner=None if row.owner is None else intern(row.owner),
            reporters=tuple(intern(r) for r in row.reporters),
            status=intern(row.status),
            handover_to=None if row.handover_to is None else intern(row.handover_to),
            version=row.version,
            order=(STATUS_RANK.get(row.status, 9), opened_us, row.id),
            opened_us=opened_us,
            content=content,
            bare=bare,
            size=size,
        )


@dataclass(eq=False)
class BuurtIssues:
    """The open issues of one kept buurt, and what was worked out from them (`memo`).

    `memo` is for the answers built from these issues (per reader and question);
    it is emptied whenever an issue changes, so nothing in it outlives the issues
    it was made of.
    """

    buurt: str
    issues: dict[str, OpenIssue] = field(default_factory=dict)
    loaded: bool = False
    # Whether reading it whole again may keep an issue's views of the same version.
    reusable: bool = True
    stale: set[str] = field(default_factory=set)
    # Bumped by every change: answers made of an older state are stale.
    changes: int = 0
    issues_size: int = 0
    memo: dict[Hashable, Any] = field(default_factory=dict)
    memo_size: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    asked_at: float = field(default_factory=time.monotonic)
    _ordered: list[OpenIssue] | None = None

    @property
    def size(self) -> int:
        """Bytes kept for this buurt (an estimate: encoded views, objects, memo)."""
        return self.issues_size + self.memo_size

    def remember(self, key: Hashable, value: Any, size: int) -> None:
        """Keep `value` in `memo` until the next change; `size`: its bytes, roughly."""
        self.memo[key] = value
        self.memo_size += size

    def ordered(self) -> list[OpenIssue]:
        """The open issues in the picture's order: unowned and escalated first, then the oldest."""
        if self._ordered is None:
            self._ordered = sorted(self.issues.values(), key=lambda issue: issue.order)
        return self._ordered

    def load(self, rows: Iterable[IssueRow], visibility: Visibility) -> None:
        """All open issues, from `rows`; when `reusable`, views of an unchanged version stay."""
        kept = self.issues if self.reusable else {}
        issues = {}
        for row in rows:
            if row.buurt != self.buurt or not row.is_open:
                continue
            issue = kept.get(row.id)
            issues[row.id] = (
                issue if issue is not None and issue.version == row.version
                else OpenIssue.of(row, visibility)
            )  # fmt: skip
        self.issues = issues
        self.issues_size = sum(issue.size for issue in issues.values())
        self.loaded = True
        self.reusable = True
        self._changed()

    def update(self, rows: dict[str, IssueRow | None], visibility: Visibility) -> None:
        """The issues read again by id: a closed, moved or missing one leaves the open ones."""
        changed = False
        for issue_id, row in rows.items():
            issue = self.issues.get(issue_id)
            if row is None or row.buurt != self.buurt or not row.is_open:
                if issue is not None:
                    del self.issues[issue_id]
                    self.issues_size -= issue.size
                    changed = True
            elif issue is None or issue.version != row.version:
                fresh = OpenIssue.of(row, visibility)
                self.issues[issue_id] = fresh
                self.issues_size += fresh.size - (issue.size if issue is not None else 0)
                changed = True
        if changed:
            self._changed()

    def _changed(self) -> None:
        self.changes += 1
        self._ordered = None
        self.memo.clear()
        self.memo_size = 0
