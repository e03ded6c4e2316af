"""The coordination application: partner signals in, commands on issues, escalation.

An `eventsourcing` application on whatever `PERSISTENCE_MODULE` its env names
(`events.jetstream` in production; the library's in-memory one in unit tests).
It knows nothing of NATS or HTTP: the edges hand it decoded signals and
commands, and turn its outcomes and refusals into replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from threading import Lock

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.utils import EnvType

from events.contract import Signal
from services.coordination.commands import MAX_ATTEMPTS, Clock, IssueCommands, utc_now
from services.coordination.intake import IntakePlan, IntakeRules, Processed
from services.coordination.issue import Issue
from services.coordination.open_issues import OpenIssues
from services.coordination.outcomes import Outcome
from services.coordination.receipt import Receipt
from services.coordination.refusals import Conflict, NotFound
from services.registries.buurten import Buurten
from services.registries.categories import Categories
from services.registries.organisations import Organisations

# The organisation recorded for what the system does by itself (escalation).
SYSTEM = "buurtbeeld"
DEFAULT_WINDOW = timedelta(days=7)
# Two messages a signal (its issue event and its receipt) plus one tracking
# record: well under JetStream's 1000 messages per atomic batch.
MAX_SIGNALS_PER_SAVE = 300
MAX_ISSUES_PER_SAVE = 900
PAGE = 1000


class Coordination(IssueCommands):
    """Buurtbeeld's write side: intake (`receive`), commands, and `escalate_overdue`.

    `window`: how long after an issue last changed a signal about the same place
    still attaches to it. `now`: the clock every event is stamped with.
    """

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        organisations: Organisations,
        categories: Categories,
        buurten: Buurten,
        now: Clock = utc_now,
        window: timedelta = DEFAULT_WINDOW,
    ) -> None:
        self.categories = categories
        self.rules = IntakeRules(organisations, categories, buurten)
        self.window = window
        self.open_issues = OpenIssues()
        self._followed = 0  # the last notification id the open issues have seen
        # Notification ids (first, last) of our own saves since: already applied.
        self._saved: list[tuple[int, int]] = []
        self._lock = Lock()  # intake and escalation share the open issues
        super().__init__(env, organisations=organisations, now=now)
        with self._lock:
            self._catch_up()

    def receive(
        self, signals: Sequence[tuple[str, Signal]], tracking: Tracking | None = None
    ) -> list[Outcome]:
        """Process `(organisation, signal)` pairs, in order; one `Outcome` each.

        A signal opens an issue, attaches to a matching open one, is a duplicate
        (its `<org>/<signalRef>` was processed before, however long ago: nothing
        changes), or is refused with reasons (nothing is stored). All of it is
        saved with `tracking` in one atomic write; more than MAX_SIGNALS_PER_SAVE
        signals take several, and only the last carries `tracking`.
        """
        with self._lock:
            self._catch_up()
            processed: Processed = {}
            outcomes: list[Outcome] = []
            step = MAX_SIGNALS_PER_SAVE
            chunks = [signals[i : i + step] for i in range(0, len(signals), step)] or [signals]
            for number, chunk in enumerate(chunks, start=1):
                last = number == len(chunks)
                outcomes += self._receive(chunk, tracking if last else None, processed)
            return outcomes

    def _receive(
        self,
        signals: Sequence[tuple[str, Signal]],
        tracking: Tracking | None,
        processed: Processed,
    ) -> list[Outcome]:
        for _ in range(MAX_ATTEMPTS):
            plan = IntakePlan(self.rules, self.open_issues, processed, self.now(), self.window)
            outcomes = [plan.take(organisation, signal) for organisation, signal in signals]
            if not plan.receipts and tracking is None:
                return outcomes
            try:
                self._save_applied(*plan.aggregates, tracking=tracking)
            except IntegrityError:
                # A receipt exists (a re-send, or another instance got there first),
                # an issue changed under us, or this position is tracked already.
                for issue_id in plan.changed_open_issues:
                    self.open_issues.reload(issue_id, self._stored_open_issue)
                self._catch_up()
                processed.update(self._receipts(signals, processed))
                if tracking is not None and self._is_tracked(tracking):
                    tracking = None
                continue
            plan.commit()
            processed.update(plan.processed)
            return outcomes
        raise Conflict(f"intake kept clashing with other writers ({MAX_ATTEMPTS} attempts)")

    def _receipts(self, signals: Sequence[tuple[str, Signal]], processed: Processed) -> Processed:
        """The signals among `signals` that have a receipt: processed before."""
        found: Processed = {}
        for organisation, signal in signals:
            key = (organisation, signal.signal_ref)
            if key in processed or self.rules.refusal_reasons(organisation, signal):
                continue
            try:
                receipt: Receipt = self.repository.get(Receipt.create_id(*key))
            except AggregateNotFoundError:
                continue
            assert isinstance(receipt, Receipt)
            found[key] = receipt.issue_id
        return found

    def _is_tracked(self, tracking: Tracking) -> bool:
        recorded = self.recorder.max_tracking_id(tracking.application_name)
        return recorded is not None and recorded >= tracking.notification_id

    def escalate_overdue(self, now: datetime | None = None) -> list[str]:
        """Escalate every open, unowned issue past its category's target time to ownership.

        Each is escalated once (the issue refuses a second time until it has
        been owned again); the state is in the log, so this is safe to call on a
        schedule from any number of restarts. Returns the escalated issues' ids.
        """
        with self._lock:
            self._catch_up()
            escalated: list[str] = []
            for _ in range(MAX_ATTEMPTS):
                at = now or self.now()
                overdue = self._overdue(at)
                if not overdue:
                    return escalated
                for start in range(0, len(overdue), MAX_ISSUES_PER_SAVE):
                    chunk = overdue[start : start + MAX_ISSUES_PER_SAVE]
                    for issue, due_at in chunk:
                        issue.escalate(SYSTEM, due_at, at)
                    try:
                        self._save_applied(*(issue for issue, _ in chunk))
                    except IntegrityError:  # claimed or changed elsewhere: look again
                        for issue, _ in chunk:
                            self.open_issues.reload(issue.id, self._stored_open_issue)
                        self._catch_up()
                        break
                    escalated += [issue.id for issue, _ in chunk]
            raise Conflict(f"escalation kept clashing with other writers ({MAX_ATTEMPTS} attempts)")

    def _overdue(self, at: datetime) -> list[tuple[Issue, datetime]]:
        overdue = []
        for issue in self.open_issues:
            category = self.categories.get(issue.category)
            if category is None:  # no longer in the registry: no target to miss
                continue
            due_at = issue.ownership_due_at(category.target_time_to_ownership)
            if due_at is not None and issue.is_overdue(at, due_at):
                overdue.append((issue, due_at))
        return overdue

    def _save_applied(self, *aggregates: Issue | Receipt, tracking: Tracking | None = None) -> None:
        """Save what the open issues already hold, so that following the log can skip it."""
        ids = [r.notification.id for r in self.save(*aggregates, tracking=tracking)]
        if ids and ids == list(range(ids[0], ids[0] + len(ids))):
            self._saved.append((ids[0], ids[-1]))

    def _catch_up(self) -> None:
        """Follow the event log from where the open issues last saw it, to its end.

        Our own saves are skipped, not read back: only what others wrote around them.
        """
        saved, self._saved = self._saved, []
        for first, last in saved:
            if first > self._followed + 1:
                self._follow(stop=first - 1)
            self._followed = max(self._followed, last)
        self._follow(stop=None)

    def _follow(self, stop: int | None) -> None:
        while stop is None or self._followed < stop:
            start = self._followed + 1
            page = self.recorder.select_notifications(start=start, limit=PAGE, stop=stop)
            for notification in page:
                self._followed = notification.id
                topic = notification.topic.partition("@")[0]
                originator_id = str(notification.originator_id)
                if self.open_issues.wants(originator_id, notification.originator_version, topic):
                    event = self.mapper.to_domain_event(notification)
                    assert isinstance(event, Issue.Event)
                    self.open_issues.follow(event, self._stored_open_issue)
            if len(page) < PAGE:
                return

    def _stored_open_issue(self, issue_id: str) -> Issue | None:
        try:
            issue = self.get_issue(issue_id)
        except NotFound:
            return None
        return issue if issue.is_open else None
