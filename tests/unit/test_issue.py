"""The Issue lifecycle, as stories. No I/O: the aggregate alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.contract import Location, SignalRecord
from services.coordination.issue import Issue, Status
from services.coordination.refusals import AlreadyOwned, Forbidden, InvalidCommand, NotOwner

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
BUURT = "BU0363FF03"


def signal(
    ref: str = "wz-1", organisation: str = "woonzorg", key: str = "parkeerplaats"
) -> SignalRecord:
    return SignalRecord(
        signal_ref=ref,
        organisation=organisation,
        summary="Grof vuil bij de containers",
        observed_at=T0,
        location=Location(key=key, address="Louweshoek 1"),
    )


def opened(**overrides: object) -> Issue:
    args: dict[str, object] = {
        "buurt": BUURT,
        "category": "grof-vuil",
        "sensitivity": "open",
        "signal": signal(),
        "at": T0,
    }
    return Issue.open(**(args | overrides))  # type: ignore[arg-type]


def replayed(issue: Issue) -> Issue:
    """The same issue, rebuilt from its events as the event store would."""
    rebuilt = None
    for e in issue.collect_events():
        rebuilt = e.mutate(rebuilt)
    assert isinstance(rebuilt, Issue)
    return rebuilt


def test_a_signal_opens_an_unowned_issue_in_its_buurt() -> None:
    issue = opened()
    assert issue.id.startswith(f"{BUURT}.issue.")
    assert issue.status is Status.UNOWNED
    assert issue.owner is None
    assert issue.signal_count == 1
    assert issue.reporters == {"woonzorg"}


def test_a_matching_signal_attaches_and_counts_its_organisation() -> None:
    issue = opened()
    # Same buurt, category and place, within the window: it matches.
    assert issue.matches(
        BUURT, "grof-vuil", "parkeerplaats", T0 + timedelta(days=1), timedelta(days=7)
    )
    # Another place, another category, no key, or too late: it does not.
    assert not issue.matches(BUURT, "grof-vuil", "speeltuin", T0, timedelta(days=7))
    assert not issue.matches(BUURT, "overlast", "parkeerplaats", T0, timedelta(days=7))
    assert not issue.matches(BUURT, "grof-vuil", None, T0, timedelta(days=7))
    assert not issue.matches(
        BUURT, "grof-vuil", "parkeerplaats", T0 + timedelta(days=8), timedelta(days=7)
    )

    issue.attach_signal(signal("bp-9", "bewonersportaal"), at=T0 + timedelta(hours=2))
    assert issue.signal_count == 2
    assert issue.reporters == {"woonzorg", "bewonersportaal"}


def test_claim_handover_accept_resolve_reopen() -> None:
    issue = opened()

    # The caretaker's corporation takes regie.
    issue.claim("woonzorg", at=T0 + timedelta(hours=1))
    assert issue.status is Status.OWNED and issue.owner == "woonzorg"
    assert issue.owned_since == T0 + timedelta(hours=1)

    # Another claim is refused: one owner at a time.
    with pytest.raises(AlreadyOwned) as refused:
        issue.claim("stadgenoot", at=T0 + timedelta(hours=2))
    assert refused.value.code == "already-owned"

    # The owner hands over to the wijkteam, which accepts and becomes owner.
    issue.offer_handover("woonzorg", to="wijkteam-nieuw-west", at=T0 + timedelta(hours=3))
    assert issue.status is Status.HANDOVER_PENDING
    issue.accept_handover("wijkteam-nieuw-west", at=T0 + timedelta(hours=4))
    assert issue.owner == "wijkteam-nieuw-west" and issue.status is Status.OWNED

    # Only the owner resolves; any organisation may reopen, and it is unowned again.
    with pytest.raises(NotOwner):
        issue.resolve("woonzorg", resolution="opgeruimd", at=T0 + timedelta(hours=5))
    issue.resolve("wijkteam-nieuw-west", resolution="opgeruimd", at=T0 + timedelta(hours=5))
    assert issue.status is Status.RESOLVED and not issue.is_open
    issue.reopen("bewonersportaal", reason="ligt er weer", at=T0 + timedelta(days=1))
    assert issue.status is Status.UNOWNED and issue.owner is None

    # Replaying the events gives the same issue.
    again = replayed(issue)
    assert (again.status, again.owner, again.version) == (issue.status, issue.owner, issue.version)


def test_a_declined_handover_leaves_the_owner_in_charge() -> None:
    issue = opened()
    issue.claim("woonzorg", at=T0)
    issue.offer_handover("woonzorg", to="gemeente-amsterdam", at=T0)

    # One pending handover at a time.
    with pytest.raises(InvalidCommand, match="pending"):
        issue.offer_handover("woonzorg", to="stadgenoot", at=T0)
    # Only the organisation it is offered to answers it.
    with pytest.raises(Forbidden) as refused:
        issue.accept_handover("stadgenoot", at=T0)
    assert refused.value.code == "forbidden"

    issue.decline_handover("gemeente-amsterdam", at=T0)
    assert issue.owner == "woonzorg" and issue.status is Status.OWNED
    with pytest.raises(InvalidCommand, match="no pending handover"):
        issue.accept_handover("gemeente-amsterdam", at=T0)


def test_only_the_owner_hands_over_or_releases() -> None:
    issue = opened()
    with pytest.raises(NotOwner, match="unowned"):
        issue.release("woonzorg", at=T0)
    issue.claim("woonzorg", at=T0)
    with pytest.raises(NotOwner) as refused:
        issue.offer_handover("stadgenoot", to="wijkteam-nieuw-west", at=T0)
    assert refused.value.code == "not-owner"
    with pytest.raises(InvalidCommand, match="already owns"):
        issue.offer_handover("woonzorg", to="woonzorg", at=T0)

    # Releasing makes it unowned, so another organisation can claim it.
    issue.release("woonzorg", at=T0)
    assert issue.status is Status.UNOWNED
    issue.claim("stadgenoot", at=T0)
    assert issue.owner == "stadgenoot"


def test_a_closed_issue_takes_no_more_commands_except_reopen() -> None:
    issue = opened()
    issue.claim("woonzorg", at=T0)
    issue.resolve("woonzorg", resolution="opgeruimd", at=T0)
    for command in (
        lambda: issue.claim("stadgenoot", at=T0),
        lambda: issue.attach_signal(signal("wz-2"), at=T0),
        lambda: issue.release("woonzorg", at=T0),
        lambda: issue.merge_into("woonzorg", into=f"{BUURT}.issue.x", at=T0),
    ):
        with pytest.raises(InvalidCommand, match="resolved"):
            command()
    # Only a resolved issue is reopened.
    with pytest.raises(InvalidCommand, match="only a resolved issue"):
        opened().reopen("woonzorg", reason="?", at=T0)


def test_merging_closes_one_issue_and_its_signals_count_for_the_other() -> None:
    first, second = opened(), opened(signal=signal("bp-1", "bewonersportaal"))

    # An unowned issue may be merged by any organisation there; an owned one by its owner.
    second.claim("stadgenoot", at=T0)
    with pytest.raises(NotOwner):
        second.merge_into("woonzorg", into=first.id, at=T0)
    with pytest.raises(InvalidCommand, match="itself"):
        first.merge_into("woonzorg", into=first.id, at=T0)

    second.merge_into("stadgenoot", into=first.id, at=T0)
    first.absorb(
        "stadgenoot",
        merged=second.id,
        signal_count=second.signal_count,
        reporters=sorted(second.reporters),
        at=T0,
    )
    assert second.status is Status.MERGED
    assert first.signal_count == 2
    assert first.reporters == {"woonzorg", "bewonersportaal"}
    assert replayed(first).signal_count == 2


def test_an_unowned_issue_past_its_target_time_is_escalated_once() -> None:
    issue = opened()
    due = T0 + timedelta(days=2)

    # Not yet due: no escalation.
    with pytest.raises(InvalidCommand, match="not overdue"):
        issue.escalate("buurtbeeld", due_at=due, at=T0 + timedelta(days=1))

    issue.escalate("buurtbeeld", due_at=due, at=due)
    assert issue.status is Status.ESCALATED
    # Exactly once.
    assert not issue.is_overdue(due + timedelta(days=1), due)
    with pytest.raises(InvalidCommand):
        issue.escalate("buurtbeeld", due_at=due, at=due + timedelta(days=1))

    # An escalated issue is still unowned: it can be claimed, and then it is owned.
    issue.claim("gemeente-amsterdam", at=due + timedelta(hours=1))
    assert issue.status is Status.OWNED


def test_an_owned_issue_is_never_overdue() -> None:
    issue = opened()
    issue.claim("woonzorg", at=T0)
    assert not issue.is_overdue(T0 + timedelta(days=30), T0 + timedelta(days=2))


def test_every_event_records_who_and_when() -> None:
    issue = opened()
    issue.claim("woonzorg", at=T0 + timedelta(minutes=5), actor="J. de Vries")
    events = issue.collect_events()
    assert [type(e).__name__ for e in events] == ["IssueOpened", "OwnershipClaimed"]
    claimed = events[1]
    assert isinstance(claimed, Issue.OwnershipClaimed)
    assert (claimed.organisation, claimed.actor) == ("woonzorg", "J. de Vries")
    assert claimed.at == claimed.timestamp == T0 + timedelta(minutes=5)
    # Every event names the buurt and category, so it is readable on its own.
    assert (claimed.buurt, claimed.category) == (BUURT, "grof-vuil")


def test_the_target_time_to_ownership_counts_from_when_it_became_unowned() -> None:
    issue = opened()
    target = timedelta(hours=48)
    assert issue.ownership_due_at(target) == T0 + target

    # Owned: nothing is due.
    issue.claim("woonzorg", at=T0 + timedelta(days=1))
    assert issue.ownership_due_at(target) is None

    # Released, or resolved and reopened: due `target` after that.
    issue.release("woonzorg", at=T0 + timedelta(days=2))
    assert issue.ownership_due_at(target) == T0 + timedelta(days=2) + target
    issue.claim("woonzorg", at=T0 + timedelta(days=3))
    issue.resolve("woonzorg", resolution="opgeruimd", at=T0 + timedelta(days=3))
    issue.reopen("bewonersportaal", reason="ligt er weer", at=T0 + timedelta(days=5))
    assert issue.ownership_due_at(target) == T0 + timedelta(days=5) + target
    assert replayed(issue).ownership_due_at(target) == T0 + timedelta(days=5) + target
