"""How the event store plans a write, without a server: subjects, batches, heads."""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from events.jetstream.appends import TOPIC_HEADER, VERSION_HEADER, Append
from events.jetstream.heads import Head, Heads
from events.jetstream.subjects import InvalidSubjectError, SubjectScheme
from events.jetstream.wire import EXPECTED_LAST_SUBJECT_SEQUENCE

SCHEME = SubjectScheme("events")
ISSUE = "BU0363FF03.issue.7f3a"


def event(originator_id: UUID | str, version: int, topic: str = "t") -> StoredEvent:
    return StoredEvent(originator_id, version, topic, b"{}")


def test_a_dotted_id_becomes_subject_tokens_under_the_buurt() -> None:
    assert SCHEME.subject_for(ISSUE) == "events.BU0363FF03.issue.7f3a"
    assert SCHEME.originator_id_of("events.BU0363FF03.issue.7f3a", None) == ISSUE


def test_a_uuid_id_is_one_token_and_comes_back_as_a_uuid() -> None:
    uid = UUID("6f1c1f5e-8a53-4d0a-9d6c-3f2a1e0b9c11")
    subject = SCHEME.subject_for(uid)
    assert subject == f"events.{uid}"
    assert SCHEME.originator_id_of(subject, "uuid") == uid


@pytest.mark.parametrize(
    "bad",
    ["", ".issue", "BU0363FF03..x", "BU0363FF03.issue.", "a b", "x.*", "x.>", "tab\there", "é"],
)
def test_ids_that_are_not_subject_tokens_are_refused_clearly(bad: str) -> None:
    with pytest.raises(InvalidSubjectError, match=r"subject token|must not be empty"):
        SCHEME.subject_for(bad)


def test_tracking_lives_beside_the_events_not_under_them() -> None:
    assert SCHEME.tracking_subject("Coordination") == "events-tracking.Coordination"
    assert not SCHEME.is_event_subject("events-tracking.Coordination")
    assert SCHEME.stream_subjects == ["events.>", "events-tracking.>"]
    with pytest.raises(InvalidSubjectError):
        SCHEME.tracking_subject("two words")


def test_an_append_expects_each_subjects_head_on_its_first_message_only() -> None:
    # Two events for one issue, one for another, and a tracking record.
    append = Append.of(
        [event(ISSUE, 3), event(ISSUE, 4), event("BU0363FF03.issue.b", 1)],
        Tracking("Intake", 41),
        SCHEME,
    )
    messages = append.with_expectations({"events." + ISSUE: Head(sequence=17, position=2)})

    # The first message of each subject carries the expectation; unknown heads expect nothing.
    expectations = [m.headers.get(EXPECTED_LAST_SUBJECT_SEQUENCE) for m in messages]
    assert expectations == ["17", None, "0", "0"]
    assert messages[0].headers[VERSION_HEADER] == "3"
    assert messages[0].headers[TOPIC_HEADER] == "t"
    assert messages[-1].subject == "events-tracking.Intake"
    assert messages[-1].data == b"41"


def test_sequences_and_heads_follow_from_the_last_sequence_of_the_batch() -> None:
    append = Append.of([event(ISSUE, 1), event(ISSUE, 2)], Tracking("Intake", 9), SCHEME)
    # The server stores a batch contiguously: 3 messages ending at 12 are 10, 11, 12.
    assert append.event_sequences(12) == [10, 11]
    assert append.written_heads(12) == {
        "events." + ISSUE: Head(11, 2),
        "events-tracking.Intake": Head(12, 9),
    }


def test_versions_must_grow_within_one_write() -> None:
    with pytest.raises(IntegrityError, match="not after"):
        Append.of([event(ISSUE, 2), event(ISSUE, 2)], None, SCHEME)
    with pytest.raises(IntegrityError, match="not after"):
        Append.of([event(ISSUE, 3), event(ISSUE, 1)], None, SCHEME)


def test_a_known_head_at_or_past_the_new_version_is_a_clash() -> None:
    append = Append.of([event(ISSUE, 3)], None, SCHEME)
    append.check_against({"events." + ISSUE: Head(5, 2)})  # version 2 stored: fine
    with pytest.raises(IntegrityError, match="already holds position 3"):
        append.check_against({"events." + ISSUE: Head(6, 3)})


def test_stale_tracking_is_a_clash() -> None:
    append = Append.of([], Tracking("Intake", 5), SCHEME)
    with pytest.raises(IntegrityError):
        append.check_against({"events-tracking.Intake": Head(8, 5)})


def test_heads_keep_the_latest_and_forget_the_least_recently_used() -> None:
    heads = Heads(capacity=2)
    heads.advance("a", Head(5, 1))
    heads.advance("a", Head(3, 0))  # older news is ignored
    assert heads.get("a") == Head(5, 1)
    heads.advance("b", Head(6, 1))
    heads.get("a")  # "a" is now the most recently used
    heads.advance("c", Head(7, 1))
    assert heads.get("b") is None
    assert heads.get("a") == Head(5, 1)
    heads.forget("a")
    assert heads.get("a") is None
