"""Encoded live pictures, kept between two commits of the projection (and at most a second).

The busiest question, a buurt's live picture, changes only when the projection
commits. Its answer is encoded once per (reader, question) and log position,
and served again while the picture is at that position and the answer is
younger than `MAX_AGE` (its `asOf` and ages are then at most that old). Any
commit makes every entry stale, so a new event shows as soon as without the
cache. Per reader: need-to-know differs between organisations.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable

from projections.changes import PictureChanges

MAX_AGE = 1.0
MAX_ENTRIES = 128


class PictureCache:
    """Answers by key, valid while `changes.position` is where they were read."""

    def __init__(
        self, changes: PictureChanges, *, max_age: float = MAX_AGE, max_entries: int = MAX_ENTRIES
    ) -> None:
        self.changes = changes
        self.max_age = max_age
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[int, float, bytes]] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        """The answer stored for `key`, if the picture has not changed since and it is young."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        position, stored_at, body = entry
        if position != self.changes.position or time.monotonic() - stored_at > self.max_age:
            del self._entries[key]
            return None
        return body

    def put(self, key: Hashable, position: int | None, body: bytes) -> None:
        """Keep `body`, read at `position`; nothing is kept for a picture of no position."""
        if position is None or position != self.changes.position:
            return
        self._entries[key] = (position, time.monotonic(), body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
