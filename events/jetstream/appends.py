"""Turning one `insert_events` call into one atomic batch of messages.

An `Append` knows, per subject, the first position it writes (the lowest new
aggregate version, or the tracked notification id), so it can tell a real
clash (the subject already holds that position) from a stale expectation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import IntegrityError, ProgrammingError, StoredEvent, Tracking

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
        messages = append.messages
        first_messages = append.first_messages
        last_messages = append.last_messages
        events_by_subject = append.events_by_subject
        for event in events:
            topic, version = event.topic, event.originator_version
            if "\r" in topic or "\n" in topic:
                raise ProgrammingError(f"a line break in the topic {topic!r}")
            headers = {TOPIC_HEADER: topic, VERSION_HEADER: str(version)}
            lines = f"{TOPIC_HEADER}: {topic}\r\n{VERSION_HEADER}: {version}\r\n"
            if isinstance(event.originator_id, UUID):
                headers[UUID_ID_HEADER] = UUID_ID_VALUE
                lines += f"{UUID_ID_HEADER}: {UUID_ID_VALUE}\r\n"
            subject = scheme.subject_for(event.originator_id)
            index = len(messages)
            previous = last_messages.get(subject)
            if previous is None:
                first_messages[subject] = (index, version)
                events_by_subject[subject] = [event]
            elif version <= previous[1]:
                raise IntegrityError(
                    f"version {version} of {event.originator_id} is not after position "
                    f"{previous[1]} in the same write"
                )
            else:
                events_by_subject[subject].append(event)
            last_messages[subject] = (index, version)
            messages.append(OutgoingMessage(subject, headers, event.state, lines))
        append.event_count = len(messages)
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

    def expectations(self, heads: Mapping[str, Head | None]) -> dict[int, int]:
        """Message index -> the last subject sequence it expects: each subject's first."""
        expected = {}
        for subject, (index, _) in self.first_messages.items():
            head = heads.get(subject)
            expected[index] = head.sequence if head else 0
        return expected

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
