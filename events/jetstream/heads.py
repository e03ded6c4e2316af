"""What this process last saw at the end of each subject.

A head is the stream sequence and the position (aggregate version, or tracked
notification id) of the last message on a subject. Writes use it as the
expected last subject sequence; the server checks it, so a stale head costs a
retry, never a wrong write. Only the client's loop thread touches a `Heads`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

from eventsourcing.persistence import StoredEvent


class Head(NamedTuple):
    """A subject's last message: its stream sequence and position (a tuple: cheap)."""

    sequence: int
    position: int


class Heads:
    """A bounded, least-recently-used map of subject to head.

    Held as plain tuples of two ints, which the garbage collector stops
    tracking once it has seen them: a hundred thousand heads add nothing to
    its walks of the heap (a `Head`, a tuple subclass, stays tracked).
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._heads: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def get(self, subject: str) -> Head | None:
        head = self._heads.get(subject)
        if head is None:
            return None
        self._heads.move_to_end(subject)
        return Head(*head)

    def advance(self, subject: str, head: Head) -> None:
        """Remember `head`, unless a later one is already known."""
        known = self._heads.get(subject)
        if known is not None and known[0] >= head.sequence:
            return
        self._heads[subject] = (head.sequence, head.position)
        self._heads.move_to_end(subject)
        if len(self._heads) > self._capacity:
            self._heads.popitem(last=False)

    def forget(self, subject: str) -> None:
        self._heads.pop(subject, None)


@dataclass(slots=True)
class KnownEvents:
    """All events of one subject up to stream sequence `sequence`."""

    sequence: int
    events: list[StoredEvent]


class EventCache:
    """The events this process has read (and written after), per subject, bounded.

    The stream is immutable, so what was read stays true; a read only has to
    ask the server for what came after `KnownEvents.sequence`. A subject is
    cached once it is read: what is only ever written (receipts, most of what
    intake opens) would fill the cache, and the garbage collector's walks,
    with events nobody reads back.
    """

    def __init__(self, max_events: int = 500_000) -> None:
        self._max_events = max_events
        self._count = 0
        self._known: OrderedDict[str, KnownEvents] = OrderedDict()

    def get(self, subject: str) -> KnownEvents | None:
        known = self._known.get(subject)
        if known is not None:
            self._known.move_to_end(subject)
        return known

    def put(self, subject: str, sequence: int, events: list[StoredEvent]) -> None:
        self.forget(subject)
        self._known[subject] = KnownEvents(sequence, events)
        self._count += len(events)
        while self._count > self._max_events and self._known:
            _, evicted = self._known.popitem(last=False)
            self._count -= len(evicted.events)

    def extend(self, subject: str, after: int, sequence: int, events: list[StoredEvent]) -> None:
        """Add events stored right after sequence `after` to what is known of `subject`;
        drop what cannot be made whole. Nothing is known of a subject not read yet."""
        known = self._known.get(subject)
        if known is not None and known.sequence == after:
            self.put(subject, sequence, known.events + events)
        else:
            self.forget(subject)

    def forget(self, subject: str) -> None:
        known = self._known.pop(subject, None)
        if known is not None:
            self._count -= len(known.events)
