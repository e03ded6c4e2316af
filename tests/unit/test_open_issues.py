"""The open-issue index holds issues compactly, and gives back the very aggregate."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta

import msgspec

from services.coordination.held_issue import HeldIssue
from services.coordination.issue import Issue
from services.coordination.open_issues import OpenIssues
from tests.unit.test_issue import T0, opened, signal

WINDOW = timedelta(days=7)


def a_life(issue: Issue) -> Iterator[Issue]:
    """`issue` after each step of a life, each step saved (no pending events)."""
    day = timedelta(days=1)
    steps = [
        lambda: issue.attach_signal(signal("bp-1", "bewonersportaal"), at=T0 + timedelta(hours=1)),
        lambda: issue.escalate("buurtbeeld", due_at=T0 + 2 * day, at=T0 + 2 * day),
        lambda: issue.claim("woonzorg", at=T0 + 2 * day, actor="J. de Vries"),
        lambda: issue.offer_handover("woonzorg", to="stadgenoot", at=T0 + 3 * day),
        lambda: issue.accept_handover("stadgenoot", at=T0 + 4 * day),
        lambda: issue.absorb(
            "stadgenoot", merged="BU0363FF03.issue.old", signal_count=2,
            reporters=["politie-west"], at=T0 + 4 * day,
        ),
        lambda: issue.release("stadgenoot", at=T0 + 5 * day),
        lambda: issue.claim("gemeente-amsterdam", at=T0 + 5 * day),
        lambda: issue.resolve("gemeente-amsterdam", resolution="opgeruimd", at=T0 + 6 * day),
        lambda: issue.reopen("bewonersportaal", reason="ligt er weer", at=T0 + 7 * day),
    ]  # fmt: skip
    issue.collect_events()
    for step in steps:
        step()
        issue.collect_events()
        yield issue


def test_a_held_issue_is_the_same_aggregate_again_at_every_step_of_its_life() -> None:
    issue = opened()
    issue.collect_events()
    assert vars(HeldIssue.of(issue).issue()) == vars(issue)
    steps = 0
    for state in a_life(issue):
        again = HeldIssue.of(state).issue()
        assert vars(again) == vars(state)
        assert type(again) is Issue
        steps += 1
    assert steps == 10 and issue.signal_count == 4 and issue.owner is None


def test_an_issue_made_again_acts_as_the_original_would() -> None:
    # Given an issue with two signals, held and made again
    issue = opened()
    issue.attach_signal(signal("bp-1", "bewonersportaal"), at=T0 + timedelta(hours=1))
    issue.collect_events()
    again = HeldIssue.of(issue).issue()

    # When a third signal attaches to both
    for one in (issue, again):
        one.attach_signal(signal("sg-1", "stadgenoot"), at=T0 + timedelta(hours=2))

    # Then they made the same event, at the same next version
    (made,), (made_again,) = issue.collect_events(), again.collect_events()
    assert vars(made) == vars(made_again) and made_again.originator_version == 3
    assert vars(again) == vars(issue) and again.signal_count == 3


def test_held_issues_share_their_strings() -> None:
    first, second = opened(), opened()
    a, b = HeldIssue.of(first), HeldIssue.of(second)
    assert a.buurt is b.buurt and a.category is b.category and a.location_key is b.location_key
    assert a.opened_at is a.created_on is a.last_changed_at  # one moment, stored once


def test_a_match_is_a_copy_the_index_takes_only_when_put() -> None:
    # Given an open issue in the index
    index = OpenIssues()
    issue = opened()
    issue.collect_events()
    index.put(issue)

    # When a signal matches it and is attached to what the match gave
    found = index.match("BU0363FF03", "grof-vuil", "parkeerplaats", T0, WINDOW)
    assert found is not None and found is not issue and found.id == issue.id
    found.attach_signal(signal("bp-1", "bewonersportaal"), at=T0 + timedelta(hours=1))

    # Then the index still holds the saved version, until the change is put
    assert (held := index.get(issue.id)) is not None and held.version == 1
    index.put(found)
    assert (held := index.get(issue.id)) is not None and held.version == 2
    assert held.signal_count == 2


def test_a_closed_issue_leaves_the_index_and_its_place() -> None:
    index = OpenIssues()
    issue = opened()
    issue.claim("woonzorg", at=T0)
    issue.resolve("woonzorg", resolution="opgeruimd", at=T0)
    issue.collect_events()
    index.put(issue)
    assert len(index) == 0
    assert index.match("BU0363FF03", "grof-vuil", "parkeerplaats", T0, WINDOW) is None


def test_only_unowned_unescalated_issues_may_be_overdue() -> None:
    index = OpenIssues()
    unowned, owned, escalated = opened(), opened(), opened()
    owned.claim("woonzorg", at=T0)
    escalated.escalate("buurtbeeld", due_at=T0, at=T0)
    for issue in (unowned, owned, escalated):
        issue.collect_events()
        index.put(issue)
    day = timedelta(days=1)

    def target(category: str) -> timedelta | None:
        return day if category == "grof-vuil" else None

    assert [issue.id for issue in index.maybe_overdue(T0 + day, target)] == [unowned.id]
    # Not yet unowned for as long as its category allows, or a category without a target
    assert list(index.maybe_overdue(T0 + day / 2, target)) == []
    assert list(index.maybe_overdue(T0 + day, lambda category: None)) == []


def test_an_index_restored_from_what_it_held_holds_the_same() -> None:
    index = OpenIssues()
    issue = opened()
    issue.collect_events()
    for step, _ in zip(a_life(issue), range(5), strict=False):
        index.put(step)
    other = opened(signal=signal("wz-2", key="speeltuin"))
    other.collect_events()
    index.put(other)
    restored = OpenIssues()
    # Read back as from a snapshot: every string and timestamp an object of its own.
    read_back = msgspec.msgpack.decode(msgspec.msgpack.encode(index.held()), type=list[HeldIssue])
    restored.restore(read_back)
    assert sorted(restored.held()) == sorted(index.held())
    assert [vars(i) for i in restored] == [vars(i) for i in index]
    for held in restored.held():  # strings shared again
        assert held.buurt is sys.intern(held.buurt)
    # It matches as the original does, place by place.
    here = index.get(other.id)
    assert here is not None and here.location_key is not None
    found = restored.match(here.buurt, here.category, here.location_key, T0, WINDOW)
    assert found is not None and found.id == other.id
