"""`eventsourcing` recorders backed by one JetStream stream.

Aggregate events live at `<prefix>.<originator id>`, tracking records at
`<prefix>-tracking.<application>`; notification ids are stream sequences.
Versions on a subject only grow: a write must come after the subject's last
version (`IntegrityError` otherwise), which is what optimistic concurrency on
`Nats-Expected-Last-Subject-Sequence` gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)
from nats.aio.msg import Msg

from events.jetstream.appends import TOPIC_HEADER, VERSION_HEADER, Append
from events.jetstream.client import JetStreamClient
from events.jetstream.heads import EventCache, Head, Heads
from events.jetstream.subjects import UUID_ID_HEADER, SubjectScheme
from events.jetstream.wire import (
    ConcurrencyConflictError,
    direct_get_batch,
    direct_get_last,
    publish_atomic,
)

SEQUENCE_HEADER = "Nats-Sequence"
SUBJECT_HEADER = "Nats-Subject"
PAGE = 1000
# Rounds of "conflict, re-read heads, retry" before giving up on a busy subject.
MAX_ATTEMPTS = 5


def _sequence(msg: Msg) -> int:
    return int((msg.headers or {})[SEQUENCE_HEADER])


def _subject(msg: Msg) -> str:
    """The subject a message was stored on (a direct get's reply names it in a header)."""
    return (msg.headers or {}).get(SUBJECT_HEADER, msg.subject)


def _version(msg: Msg) -> int:
    return int((msg.headers or {})[VERSION_HEADER])


class JetStreamRecorder:
    """What every recorder shares: the stream, its subjects and the write path."""

    def __init__(self, client: JetStreamClient, stream: str, scheme: SubjectScheme) -> None:
        self.client = client
        self.stream = stream
        self.scheme = scheme
        self._heads = Heads()
        self._cache = EventCache()

    # -- writing -------------------------------------------------------------

    def _write(self, events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        return self.insert_prepared(self.prepare(events, tracking))

    def prepare(self, events: Sequence[StoredEvent], tracking: Tracking | None) -> Append:
        """Plan the atomic write of `events` and `tracking` (in any thread), for
        `insert_prepared`: the part of a write that needs neither the server nor
        the loop thread, so a caller can do it ahead of time."""
        return Append.of(events, tracking, self.scheme)

    def insert_prepared(self, append: Append) -> list[int]:
        """Store a prepared write, all or nothing; the stream sequences of its events."""
        if not append.messages:
            return []
        return self.client.run(self._append(append))

    async def _append(self, append: Append) -> list[int]:
        heads = {subject: self._heads.get(subject) for subject in append.subjects}
        append.check_against(heads)  # a known head is never ahead of the stream
        for _ in range(MAX_ATTEMPTS):
            try:
                last = await publish_atomic(
                    self.client.nc,
                    append.messages,
                    self.client.timeout,
                    self.client.replies,
                    append.expectations(heads),
                )
            except ConcurrencyConflictError:
                # Our expectation was stale or another writer got there first:
                # read the true heads, and retry only if nothing clashes.
                heads = await self._read_heads(append.subjects)
                append.check_against(heads)
                continue
            for subject, head in append.written_heads(last).items():
                self._heads.advance(subject, head)
                if subject in append.events_by_subject:
                    expected = heads.get(subject)
                    self._cache.extend(
                        subject,
                        after=expected.sequence if expected else 0,
                        sequence=head.sequence,
                        events=append.events_by_subject[subject],
                    )
            return append.event_sequences(last)
        raise IntegrityError(f"gave up after {MAX_ATTEMPTS} concurrent writes to {append.subjects}")

    async def _read_heads(self, subjects: list[str]) -> dict[str, Head | None]:
        heads = await asyncio.gather(*(self._read_head(s) for s in subjects))
        return dict(zip(subjects, heads, strict=True))

    async def _read_head(self, subject: str) -> Head | None:
        self._heads.forget(subject)
        msg = await direct_get_last(self.client.nc, self.stream, subject, self.client.timeout)
        if msg is None:
            return None
        position = _version(msg) if self.scheme.is_event_subject(subject) else int(msg.data)
        head = Head(_sequence(msg), position)
        self._heads.advance(subject, head)
        return head

    def forget_cached_events(self) -> None:
        """Drop the events read so far (after a one-off read of much of the log, say).

        Not while reads run: call it when nothing else uses the recorder.
        """
        self._cache = EventCache()

    # -- reading -------------------------------------------------------------

    async def _read_subject(
        self, subject: str | None, start: int = 1, limit: int | None = None
    ) -> list[Msg]:
        """Messages on `subject` (wildcards allowed; None: any) from sequence `start`,
        in pages."""
        messages: list[Msg] = []
        while limit is None or len(messages) < limit:
            page = PAGE if limit is None else min(PAGE, limit - len(messages))
            got, pending = await direct_get_batch(
                self.client.nc,
                self.client.replies,
                self.stream,
                subject=subject,
                start=start,
                batch=page,
                timeout=self.client.timeout,
            )
            messages.extend(got)
            if not got or not pending:
                break
            start = _sequence(got[-1]) + 1
        return messages


class JetStreamAggregateRecorder(JetStreamRecorder, AggregateRecorder):
    """Stores and reads the events of aggregates, one subject each."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._write(stored_events, None)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        subject = self.scheme.subject_for(originator_id)
        return self.client.run(self._select(subject, originator_id, gt, lte, desc, limit))

    async def _all_events(self, subject: str, originator_id: UUID | str) -> list[StoredEvent]:
        """Every event on `subject`: what we know, plus what was stored after it."""
        known = self._cache.get(subject)
        after = known.sequence if known else 0
        messages = await self._read_subject(subject, start=after + 1)
        if not messages:
            return known.events if known else []
        self._heads.advance(subject, Head(_sequence(messages[-1]), _version(messages[-1])))
        new = self._stored_events(originator_id, messages)
        if known is None:  # read from its beginning: cached from now on
            self._cache.put(subject, _sequence(messages[-1]), new)
        else:
            self._cache.extend(subject, after, _sequence(messages[-1]), new)
        return (known.events if known else []) + new

    @staticmethod
    def _stored_events(originator_id: UUID | str, messages: list[Msg]) -> list[StoredEvent]:
        return [
            StoredEvent(
                originator_id=originator_id,
                originator_version=_version(m),
                topic=(m.headers or {})[TOPIC_HEADER],
                state=m.data,
            )
            for m in messages
        ]

    async def _select(
        self,
        subject: str,
        originator_id: UUID | str,
        gt: int | None,
        lte: int | None,
        desc: bool,
        limit: int | None,
    ) -> list[StoredEvent]:
        if desc and limit == 1 and lte is None:
            # The last event only (how snapshots are found): one direct get.
            last = await direct_get_last(self.client.nc, self.stream, subject, self.client.timeout)
            messages = [] if last is None else [last]
            events = self._stored_events(originator_id, messages)
        else:
            events = await self._all_events(subject, originator_id)
        events = [
            e
            for e in events
            if (gt is None or e.originator_version > gt)
            and (lte is None or e.originator_version <= lte)
        ]
        if desc:
            events.reverse()
        return events if limit is None else events[:limit]


class JetStreamApplicationRecorder(JetStreamAggregateRecorder, ApplicationRecorder):
    """Also reads the application sequence: every event, by stream sequence."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._write(stored_events, None)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        first = 1 if start is None else (start if inclusive_of_start else start + 1)
        return self.client.run(self._select_notifications(max(first, 1), limit, stop, topics))

    async def _select_notifications(
        self, first: int, limit: int, stop: int | None, topics: Sequence[str]
    ) -> list[Notification]:
        wanted = set(topics)
        found: list[Notification] = []
        while len(found) < limit:
            # Without a topic filter, each message read is one result.
            batch = PAGE if wanted else min(PAGE, limit - len(found))
            if stop is not None:
                batch = min(batch, stop - first + 1)
            if batch <= 0:
                break
            # Every message, not `events.>`'s: the stream holds little else (the
            # tracking records), and the server reads a wildcard's ~6x slower.
            page = await self._read_subject(None, first, batch)
            for msg in page:
                if not self.scheme.is_event_subject(_subject(msg)):
                    continue
                notification = self.notification_of(msg)
                if stop is not None and notification.id > stop:
                    return found
                if not wanted or notification.topic in wanted:
                    found.append(notification)
                    if len(found) == limit:
                        break
            if len(page) < batch:
                break
            first = _sequence(page[-1]) + 1
        return found

    def notification_of(self, msg: Msg) -> Notification:
        headers = msg.headers or {}
        subject = _subject(msg)
        # Direct gets carry the sequence in a header, consumer deliveries in metadata.
        sequence = headers.get(SEQUENCE_HEADER)
        return Notification(
            id=int(sequence) if sequence else msg.metadata.sequence.stream,
            originator_id=self.scheme.originator_id_of(subject, headers.get(UUID_ID_HEADER)),
            originator_version=int(headers[VERSION_HEADER]),
            topic=headers[TOPIC_HEADER],
            state=msg.data,
        )

    def max_notification_id(self) -> int | None:
        last = self.client.run(
            direct_get_last(
                self.client.nc, self.stream, self.scheme.events_filter, self.client.timeout
            )
        )
        return None if last is None else _sequence(last)

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        from events.jetstream.subscription import JetStreamSubscription

        return JetStreamSubscription(self, gt=gt, topics=topics)


class JetStreamTrackingRecorder(JetStreamRecorder, TrackingRecorder):
    """Records how far an application has processed another one's events."""

    def insert_tracking(self, tracking: Tracking) -> None:
        self._write((), tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        subject = self.scheme.tracking_subject(application_name)
        head = self.client.run(self._read_head(subject))
        return None if head is None else head.position


class JetStreamProcessRecorder(
    JetStreamTrackingRecorder, JetStreamApplicationRecorder, ProcessRecorder
):
    """Events and the tracking record of what caused them, in one atomic batch."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._write(stored_events, kwargs.get("tracking"))
