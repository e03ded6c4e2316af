"""Intake: from partner signals to issue events and receipts, before anything is saved.

Domain only. The registries say whether a signal may be processed at all; the
open issues say whether it opens a new issue or attaches to a matching one;
every processed signal gets a receipt. An `IntakePlan` is one attempt: if its
save fails, the application throws it away and plans again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from events.contract import SealedPersonalData, Signal, SignalRecord
from services.coordination.issue import Issue
from services.coordination.open_issues import OpenIssues, Place
from services.coordination.outcomes import Outcome, OutcomeKind
from services.coordination.receipt import Receipt
from services.registries.buurten import Buurten
from services.registries.categories import Categories
from services.registries.organisations import Organisations

# (organisation, signal ref) -> the issue it was processed onto.
Processed = dict[tuple[str, str], str]


@dataclass(frozen=True)
class IntakeRules:
    """What the registries require of a signal before it is processed."""

    organisations: Organisations
    categories: Categories
    buurten: Buurten

    def refusal_reasons(self, organisation: str, signal: Signal) -> list[str]:
        """Why `organisation` may not send `signal`; empty when it may."""
        reasons = []
        known = self.organisations.get(organisation)
        if known is None:
            reasons.append(f"organisation {organisation!r} is not in the organisations file")
        elif not known.is_active_in(signal.buurt):
            reasons.append(f"organisation {organisation} is not active in buurt {signal.buurt}")
        if signal.category not in self.categories:
            reasons.append(f"category {signal.category!r} is not a known category")
        reasons.extend(self.buurten.check(signal.buurt))
        return reasons

    def sensitivity(self, category: str) -> str:
        known = self.categories.get(category)
        assert known is not None, "refused before it gets here"
        return known.sensitivity.value


# A signal's personal data sealed with its data subject's key (`events.personal_data`).
Seal = Callable[[str, Signal], list[SealedPersonalData] | None]


def signal_record(organisation: str, signal: Signal, seal: Seal) -> SignalRecord:
    """The signal as an issue remembers it: who sent it, and what it says; its personal
    data only sealed, so that it can be forgotten."""
    return SignalRecord(
        signal_ref=signal.signal_ref,
        organisation=organisation,
        summary=signal.summary,
        observed_at=signal.observed_at,
        location=signal.location,
        personal=seal(organisation, signal),
    )


class IntakePlan:
    """One attempt at processing some signals at `at`: the issues they open or change.

    Works on copies of the held open issues; after a successful save, `commit()`
    holds them as changed. After a failed one, the caller reloads
    `changed_open_issues` (a pipelined plan is committed before its save).
    """

    def __init__(
        self,
        rules: IntakeRules,
        open_issues: OpenIssues,
        processed: Processed,
        at: datetime,
        window: timedelta,
        seal: Seal,
    ) -> None:
        self.rules = rules
        self.seal = seal
        self.open_issues = open_issues
        self.processed = dict(processed)
        self.at = at
        self.window = window
        self.issues: dict[str, Issue] = {}
        self.receipts: list[Receipt.SignalReceived] = []
        self.changed_open_issues: set[str] = set()
        self._opened: dict[Place, Issue] = {}

    @property
    def aggregates(self) -> list[Issue | Receipt.SignalReceived]:
        """What to save, together: the issues, and the receipts' (only) events."""
        return [*self.issues.values(), *self.receipts]

    def take(self, organisation: str, signal: Signal) -> Outcome:
        """Refuse `signal`, pass it over as processed before, or open or attach an issue."""
        reasons = self.rules.refusal_reasons(organisation, signal)
        if reasons:
            return _outcome(organisation, signal, OutcomeKind.REFUSED, reasons=tuple(reasons))
        key = (organisation, signal.signal_ref)
        if key in self.processed:
            return _outcome(organisation, signal, OutcomeKind.DUPLICATE, self.processed[key])
        record = signal_record(organisation, signal, self.seal)
        location_key = signal.location.key if signal.location else None
        issue = self._match(signal.buurt, signal.category, location_key)
        if issue is None:
            sensitivity = self.rules.sensitivity(signal.category)
            issue = Issue.open(signal.buurt, signal.category, sensitivity, record, self.at)
            kind = OutcomeKind.OPENED
            if location_key is not None:
                self._opened[(signal.buurt, signal.category, location_key)] = issue
        else:
            issue.attach_signal(record, self.at)
            kind = OutcomeKind.ATTACHED
        self.issues[issue.id] = issue
        self.receipts.append(Receipt.received(organisation, signal.signal_ref, issue.id, self.at))
        self.processed[key] = issue.id
        return _outcome(organisation, signal, kind, issue.id)

    def _match(self, buurt: str, category: str, location_key: str | None) -> Issue | None:
        if location_key is None:
            return None
        opened_here = self._opened.get((buurt, category, location_key))
        if opened_here is not None:
            return opened_here
        issue = self.open_issues.match(buurt, category, location_key, self.at, self.window)
        if issue is None:
            return None
        self.changed_open_issues.add(issue.id)
        # The same issue again in this plan: the copy that has its earlier signals.
        return self.issues.get(issue.id, issue)

    def commit(self) -> None:
        """The save succeeded: the open issues hold what was saved."""
        for issue in self.issues.values():
            self.open_issues.put(issue)


def _outcome(
    organisation: str,
    signal: Signal,
    kind: OutcomeKind,
    issue_id: str | None = None,
    reasons: tuple[str, ...] = (),
) -> Outcome:
    return Outcome(
        organisation=organisation,
        signal_ref=signal.signal_ref,
        kind=kind,
        issue_id=issue_id,
        reasons=reasons,
    )
