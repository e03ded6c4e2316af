"""What this process last saw at the end of each subject.

A head is the stream sequence and the position (aggregate version, or tracked
notification id) of the last message on a subject. Writes use it as the
expected last subject sequence; the server checks it, so a stale head costs a
retry, never a wrong write. Only the client's loop thread touches a `Heads`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Head:
    sequence: int
    position: int


class Heads:
    """A bounded, least-recently-used map of subject to head."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._heads: OrderedDict[str, Head] = OrderedDict()

    def get(self, subject: str) -> Head | None:
        head = self._heads.get(subject)
        if head is not None:
            self._heads.move_to_end(subject)
        return head

    def advance(self, subject: str, head: Head) -> None:
        """Remember `head`, unless a later one is already known."""
        known = self._heads.get(subject)
        if known is not None and known.sequence >= head.sequence:
            return
        self._heads[subject] = head
        self._heads.move_to_end(subject)
        if len(self._heads) > self._capacity:
            self._heads.popitem(last=False)

    def forget(self, subject: str) -> None:
        self._heads.pop(subject, None)
