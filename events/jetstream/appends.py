"""Turning one `insert_events` call into one atomic batch of messages.

An `Append` knows, per subject, the first position it writes (the lowest new
aggregate version, or the tracked notification id), so it can tell a real
clash (the subject already holds that position) from a stale expectation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from events.jetstream.heads import Head
from events.jetstream.subjects import UUID_ID_HEADER, UUID_ID_VALUE, SubjectScheme
from events.jetstream.wire import EXPECTED_LAST_SUBJECT_SEQUENCE, OutgoingMessage

TOPIC_HEADER = "Es-Topic"
VERSION_HEADER = "Es-Version"


@dataclass
class Append:
    """The messages of one atomic write, events first and tracking last."""

    messages: list[OutgoingMessage] = field(default_factory=list)
    # Subject -> (index of its first message, first position written there).
    first_messages: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Subject -> (index of its last message, position of that message).
    last_messages: dict[str, tuple[int, int]] = field(default_factory=dict)
    event_count: int = 0
    # Subject -> the events written there, for the event cache.
    events_by_subject: dict[str, list[StoredEvent]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, events: Sequence[StoredEvent], tracking: Tracking | None, scheme: SubjectScheme
    ) -> Append:
        append = cls()
        for event in events:
            headers = {TOPIC_HEADER: event.topic, VERSION_HEADER: str(event.originator_version)}
            if isinstance(event.originator_id, UUID):
                headers[UUID_ID_HEADER] = UUID_ID_VALUE
            subject = scheme.subject_for(event.originator_id)
            append.events_by_subject.setdefault(subject, []).append(event)
            append._add(
                subject,
                event.originator_version,
                headers,
                event.state,
                what=f"version {event.originator_version} of {event.originator_id}",
            )
        append.event_count = len(append.messages)
        if tracking is not None:
            append._add(
                scheme.tracking_subject(tracking.application_name),
                tracking.notification_id,
                {},
                str(tracking.notification_id).encode(),
                what=f"tracking {tracking.application_name} {tracking.notification_id}",
            )
        return append

    def _add(
        self, subject: str, position: int, headers: dict[str, str], data: bytes, what: str
    ) -> None:
        previous = self.last_messages.get(subject)
        if previous is not None and position <= previous[1]:
            raise IntegrityError(f"{what} is not after position {previous[1]} in the same write")
        self.first_messages.setdefault(subject, (len(self.messages), position))
        self.last_messages[subject] = (len(self.messages), position)
        self.messages.append(OutgoingMessage(subject, headers, data))

    @property
    def subjects(self) -> list[str]:
        return list(self.first_messages)

    def check_against(self, heads: Mapping[str, Head | None]) -> None:
        """Refuse if a subject already holds a position this append would write."""
        for subject, (_, first) in self.first_messages.items():
            head = heads.get(subject)
            if head is not None and head.position >= first:
                raise IntegrityError(
                    f"{subject} already holds position {head.position}; cannot write {first}"
                )

    def with_expectations(self, heads: Mapping[str, Head | None]) -> list[OutgoingMessage]:
        """The messages, each subject's first one expecting that subject's head."""
        out = list(self.messages)
        for subject, (index, _) in self.first_messages.items():
            head = heads.get(subject)
            message = out[index]
            headers = {
                **message.headers,
                EXPECTED_LAST_SUBJECT_SEQUENCE: str(head.sequence if head else 0),
            }
            out[index] = OutgoingMessage(message.subject, headers, message.data)
        return out

    def written_heads(self, last_sequence: int) -> dict[str, Head]:
        """The head of every subject once the batch ending at `last_sequence` is stored."""
        first_sequence = last_sequence - len(self.messages) + 1
        return {
            subject: Head(first_sequence + index, position)
            for subject, (index, position) in self.last_messages.items()
        }

    def event_sequences(self, last_sequence: int) -> list[int]:
        first_sequence = last_sequence - len(self.messages) + 1
        return list(range(first_sequence, first_sequence + self.event_count))
