"""The coordination application: partner signals in, commands on issues, escalation.

An `eventsourcing` application on whatever `PERSISTENCE_MODULE` its env names
(`events.jetstream` in production; the library's in-memory one in unit tests).
It knows nothing of NATS or HTTP: the edges hand it decoded signals and
commands, and turn its outcomes and refusals into replies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Lock

import structlog
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    OperationalError,
    Recording,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import EnvType

from events.contract import Signal
from events.personal_data import PersonalDataVault
from events.personal_keys_sql import keys_beside
from services.coordination.commands import MAX_ATTEMPTS, Clock, IssueCommands, utc_now
from services.coordination.index_snapshot import FORMAT, IndexSnapshot, IndexSnapshots
from services.coordination.intake import IntakePlan, IntakeRules, Processed
from services.coordination.issue import Issue
from services.coordination.open_issues import OpenIssues
from services.coordination.outcomes import Outcome, OutcomeKind
from services.coordination.receipt import Receipt
from services.coordination.refusals import Conflict, NotFound
from services.registries.buurten import Buurten
from services.registries.categories import Categories
from services.registries.organisations import Organisations

log = structlog.get_logger(__name__)

# The organisation recorded for what the system does by itself (escalation).
SYSTEM = "buurtbeeld"
DEFAULT_WINDOW = timedelta(days=7)

# Two messages a signal (its issue event and its receipt) plus one tracking
# record: within JetStream's 1000 messages per atomic batch.
MAX_SIGNALS_PER_SAVE = 499
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
        index_snapshots: IndexSnapshots | None = None,
        personal_data: PersonalDataVault | None = None,
    ) -> None:
        self.categories = categories
        # Where the open issues are kept between runs (None: rebuilt from the log each start).
        self.index_snapshots = index_snapshots
        # The position of the snapshot the open issues started from, if any.
        self.restored_from: int | None = None
        # Events read from the log to rebuild the open issues on start.
        self.rebuilt_from_log = 0
        self.rules = IntakeRules(organisations, categories, buurten)
        self.window = window
        self.open_issues = OpenIssues()
        self._followed = 0  # the last notification id the open issues have seen
        # Notification ids (first, last) of our own saves since: already applied.
        self._saved: list[tuple[int, int]] = []
        self._lock = Lock()  # intake and escalation share the open issues
        # Open issues changed in memory by a save that failed: reloaded before use.
        self._stale: set[str] = set()
        # Saves chunk n while intake plans chunk n + 1 (see `_receive_pipelined`).
        self._saver: ThreadPoolExecutor | None = None
        # Intake saves the store refused (a re-sent signal, an issue changed elsewhere).
        self.clashes = 0
        super().__init__(env, organisations=organisations, now=now)
        # The keys of personal data live beside the event store (in memory with the POPO one).
        self.personal_data = personal_data or PersonalDataVault(keys_beside(self.factory))
        with self._lock:
            if index_snapshots is not None:
                self._restore(index_snapshots.load())
            started = self._followed
            self._catch_up()
            self.rebuilt_from_log = self._followed - started
        # The rebuild read every reopened issue whole; those events are not needed again.
        forget_cached_events = getattr(self.recorder, "forget_cached_events", None)
        if forget_cached_events is not None:
            forget_cached_events()

    def receive(
        self, signals: Sequence[tuple[str, Signal]], tracking: Tracking | None = None
    ) -> list[Outcome]:
        """Process `(organisation, signal)` pairs, in order; one `Outcome` each.

        A signal opens an issue, attaches to a matching open one, is a duplicate
        (its `<org>/<signalRef>` was processed before, however long ago: nothing
        changes), or is refused with reasons (nothing is stored). All of it is
        saved with `tracking` in one atomic write; more than MAX_SIGNALS_PER_SAVE
        signals take several, in order, and only the last carries `tracking`.
        """
        with self._lock:
            self._catch_up()
            self._refresh_stale()
            step = MAX_SIGNALS_PER_SAVE
            chunks = [signals[i : i + step] for i in range(0, len(signals), step)] or [signals]
            trackings = [None] * (len(chunks) - 1) + [tracking]
            if len(chunks) > 1 and self._can_pipeline():
                return self._receive_pipelined(chunks, trackings)
            processed: Processed = {}
            outcomes: list[Outcome] = []
            for chunk, chunk_tracking in zip(chunks, trackings, strict=True):
                outcomes += self._receive(chunk, chunk_tracking, processed)
            return outcomes

    def _receive(
        self,
        signals: Sequence[tuple[str, Signal]],
        tracking: Tracking | None,
        processed: Processed,
    ) -> list[Outcome]:
        for _ in range(MAX_ATTEMPTS):
            plan, outcomes = self._take(signals, processed)
            try:
                if not plan.receipts and tracking is None:
                    return outcomes
                self._save_applied(*plan.aggregates, tracking=tracking)
            except IntegrityError:
                # A receipt exists (a re-send, or another instance got there first),
                # an issue changed under us, or this position is tracked already.
                self.clashes += 1
                self._mark_stale(plan.changed_open_issues)
                self._catch_up()
                self._refresh_stale()
                processed.update(self._receipts(signals, processed))
                if tracking is not None and self._is_tracked(tracking):
                    tracking = None
                continue
            except BaseException:
                # Not saved (or not known to be): what the plan changed in memory is not
                # what is stored.
                self._mark_stale(plan.changed_open_issues)
                raise
            plan.commit()
            processed.update(plan.processed)
            return outcomes
        raise Conflict(f"intake kept clashing with other writers ({MAX_ATTEMPTS} attempts)")

    def _receive_pipelined(
        self,
        chunks: Sequence[Sequence[tuple[str, Signal]]],
        trackings: Sequence[Tracking | None],
    ) -> list[Outcome]:
        """`_receive` for each chunk, in order, with chunk n + 1 planned while n is saved.

        The save of one chunk is mostly waiting for the server, and planning the
        next is all Python: done side by side, the two overlap. Only one save is
        ever in flight, and the next is sent only once it has succeeded, so the
        store holds a prefix of the chunks, and the tracking (on the last) never
        goes ahead of a chunk that failed. The next chunk is planned as if the
        save in flight succeeded (its opened issues already held); if it fails,
        both plans are undone (their issues reloaded) and the failed chunk is done
        again the careful way, `_receive` with its retries.
        """
        processed: Processed = {}
        outcomes: list[Outcome] = []
        in_flight: _Planned | None = None
        planned: _Planned | None = None
        number = 0
        try:
            while number < len(chunks) or in_flight is not None:
                planned = None
                if number < len(chunks):
                    base = in_flight.plan.processed if in_flight else processed
                    planned = self._plan(number, chunks[number], trackings[number], base)
                if in_flight is not None:
                    try:
                        ids = in_flight.save_result()
                    except IntegrityError:
                        self.clashes += 1
                        failed = in_flight.number
                        self._undo(in_flight, planned)
                        in_flight = planned = None
                        self._catch_up()
                        self._refresh_stale()
                        outcomes += self._receive(chunks[failed], trackings[failed], processed)
                        number = failed + 1
                        continue
                    self._applied(ids)
                    processed = in_flight.plan.processed
                    outcomes += in_flight.outcomes
                    in_flight = None
                if planned is not None:
                    number += 1
                    if planned.prepared is None:  # nothing to save: all refused or duplicates
                        processed = planned.plan.processed
                        outcomes += planned.outcomes
                    else:
                        assert self._saver is not None
                        planned.saving = self._saver.submit(self._store, planned.prepared)
                        in_flight = planned
                    planned = None
        except BaseException:
            if in_flight is not None and in_flight.saving is not None:
                try:
                    self._applied(in_flight.save_result())
                    in_flight = None
                except BaseException:
                    pass
            self._undo(in_flight, planned)
            raise
        return outcomes

    def _plan(
        self,
        number: int,
        signals: Sequence[tuple[str, Signal]],
        tracking: Tracking | None,
        processed: Processed,
    ) -> _Planned:
        """Plan a chunk and take its events; the held open issues show it as saved."""
        plan, outcomes = self._take(signals, processed)
        planned = _Planned(number, plan, outcomes)
        try:
            plan.commit()
            if plan.receipts or tracking is not None:
                planned.prepared = self._prepare(self._collect(plan.aggregates, tracking))
        except BaseException:
            self._undo(planned)
            raise
        return planned

    def _take(
        self, signals: Sequence[tuple[str, Signal]], processed: Processed
    ) -> tuple[IntakePlan, list[Outcome]]:
        """A new plan that took `signals`, in order, and their outcomes.

        Planning is all in memory, on copies of the held open issues: a signal
        whose planning raises meets a fault of ours, and would meet it on every
        try. It is refused (its organisation hears so on `rejected.<org>`, and
        may send it again), logged with the error for the operators, and the
        others are planned again without it: it never holds up the signals it
        came with, nor those after it.
        """
        failed: dict[int, str] = {}  # position in `signals`: the error's name
        while True:
            plan = IntakePlan(
                self.rules,
                self.open_issues,
                processed,
                self.now(),
                self.window,
                self.personal_data.seal,
            )
            outcomes: list[Outcome] = []
            for number, (organisation, signal) in enumerate(signals):
                if number in failed:
                    outcomes.append(_unprocessable(organisation, signal, failed[number]))
                    continue
                try:
                    outcomes.append(plan.take(organisation, signal))
                except OperationalError:  # the keys' store away (sealing): try again later
                    raise
                except Exception as e:
                    log.exception(
                        "intake.unprocessable",
                        organisation=organisation,
                        signal_ref=signal.signal_ref,
                        buurt=signal.buurt,
                    )
                    failed[number] = type(e).__name__
                    break
            else:
                return plan, outcomes

    def _undo(self, *plans: _Planned | None) -> None:
        """Forget what these unsaved plans did to the open issues (reloaded before use)."""
        for planned in plans:
            if planned is not None:
                self._mark_stale(planned.plan.issues)

    def _can_pipeline(self) -> bool:
        """Whether saving may happen beside planning: nothing else holds the aggregates."""
        if self.repository.cache or (self.snapshots and self.snapshotting_intervals):
            return False
        if self._saver is None:
            self._saver = ThreadPoolExecutor(1, thread_name_prefix="coordination-save")
        return True

    @staticmethod
    def _collect(
        objs: Sequence[Issue | Receipt.SignalReceived], tracking: Tracking | None
    ) -> ProcessingEvent[str]:
        """The new events of aggregates, and events made without one (receipts')."""
        processing = ProcessingEvent[str](tracking=tracking)
        for obj in objs:
            if isinstance(obj, Issue):
                processing.events.extend(obj.collect_events())
                processing.aggregates[obj.id] = obj
            else:
                processing.events.append(obj)
        return processing

    def _prepare(self, processing: ProcessingEvent[str]) -> _Prepared:
        """Map the events for storing, and plan the write if the recorder can say how.

        Done while planning, not while saving: the save in flight is the longer
        of the two (most of it the server's time), so what can move off it should.
        """
        stored = list(map(self.mapper.to_stored_event, processing.events))
        prepare = getattr(self.recorder, "prepare", None)
        write = prepare(stored, processing.tracking) if prepare is not None else None
        return _Prepared(processing, stored, write)

    def _store(self, prepared: _Prepared) -> list[int]:
        """Store prepared events and their tracking, atomically (in the saver thread)."""
        if prepared.write is not None:
            ids = self.recorder.insert_prepared(prepared.write)  # type: ignore[attr-defined]
        else:
            ids = self.recorder.insert_events(
                prepared.stored, tracking=prepared.processing.tracking
            )
        notification_ids = list(ids or [])
        if type(self)._notify is not Application._notify:  # someone listens: tell them
            self._notify(
                [
                    Recording(
                        event,
                        Notification(
                            id=nid,
                            originator_id=stored.originator_id,
                            originator_version=stored.originator_version,
                            topic=stored.topic,
                            state=stored.state,
                        ),
                    )
                    for event, stored, nid in zip(
                        prepared.processing.events, prepared.stored, notification_ids, strict=True
                    )
                ]
            )
        return notification_ids

    def _mark_stale(self, issue_ids: Iterable[str]) -> None:
        for issue_id in issue_ids:
            self.open_issues.forget(issue_id)
            self._stale.add(issue_id)

    def _refresh_stale(self) -> None:
        """Reload the open issues a failed save left changed in memory."""
        while self._stale:
            issue_id = next(iter(self._stale))
            self.open_issues.reload(issue_id, self._stored_open_issue)
            self._stale.discard(issue_id)

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
            self._refresh_stale()
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
                        self._mark_stale(issue.id for issue, _ in chunk)
                        self._catch_up()
                        self._refresh_stale()
                        break
                    except BaseException:
                        self._mark_stale(issue.id for issue, _ in chunk)
                        raise
                    for issue, _ in chunk:
                        self.open_issues.put(issue)
                    escalated += [issue.id for issue, _ in chunk]
            raise Conflict(f"escalation kept clashing with other writers ({MAX_ATTEMPTS} attempts)")

    def close(self) -> None:
        if self._saver is not None:
            self._saver.shutdown(wait=True)
        super().close()

    def _overdue(self, at: datetime) -> list[tuple[Issue, datetime]]:
        def target(code: str) -> timedelta | None:
            category = self.categories.get(code)
            return None if category is None else category.target_time_to_ownership

        overdue = []
        for issue in self.open_issues.maybe_overdue(at, target):
            category = self.categories.get(issue.category)
            if category is None:  # no longer in the registry: no target to miss
                continue
            due_at = issue.ownership_due_at(category.target_time_to_ownership)
            if due_at is not None and issue.is_overdue(at, due_at):
                overdue.append((issue, due_at))
        return overdue

    def _save_applied(
        self, *objs: Issue | Receipt.SignalReceived, tracking: Tracking | None = None
    ) -> None:
        """Save what the open issues already hold, so that following the log can skip it.

        `save` as the library does it, for issues and receipts' events (without
        its per-object Protocol checks: tens of microseconds each on Python 3.11).
        """
        processing = self._collect(objs, tracking)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self._applied([r.notification.id for r in recordings])

    def _applied(self, ids: list[int]) -> None:
        """Our own save stored events `ids`: following the log can skip them."""
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

    def _restore(self, snapshot: IndexSnapshot | None) -> None:
        """Start the open issues from `snapshot`, if it is one of this log."""
        if snapshot is None:
            return
        position = snapshot.position
        if self._event_at(position) != tuple(snapshot.at_position):
            return  # of another log: rebuilt from its start
        self.open_issues.restore(snapshot.issues)
        self._followed = self.restored_from = position

    @property
    def followed(self) -> int:
        """The last log position the open issues reflect, our own saves included (0: none
        yet); read without the lock, so maybe a save behind."""
        saved = self._saved
        return max(self._followed, saved[-1][1] if saved else 0)

    def save_snapshot(self) -> IndexSnapshot | None:
        """Keep the open issues as they are now in `snapshots`, for the next start;
        what was kept (None: nothing to keep, or nowhere to keep it)."""
        if self.index_snapshots is None:
            return None
        with self._lock:
            self._catch_up()
            self._refresh_stale()  # a failed save left them out: the snapshot must hold them
            position = self._followed
            at_position = self._event_at(position) if position else None
            if at_position is None:
                return None
            snapshot = IndexSnapshot(
                format=FORMAT,
                position=position,
                at_position=at_position,
                issues=self.open_issues.held(),
            )
        self.index_snapshots.save(snapshot)  # the held issues are immutable: intake may go on
        return snapshot

    def _event_at(self, position: int) -> tuple[str, int] | None:
        """(originator id, version) of the event stored at `position`, if there is one."""
        found = self.recorder.select_notifications(start=position, limit=1, stop=position)
        if not found:
            return None
        return str(found[0].originator_id), found[0].originator_version

    def _stored_open_issue(self, issue_id: str) -> Issue | None:
        try:
            issue = self.get_issue(issue_id)
        except NotFound:
            return None
        return issue if issue.is_open else None


def _unprocessable(organisation: str, signal: Signal, error: str) -> Outcome:
    """A signal refused because processing it raised `error` (see `Coordination._take`)."""
    return Outcome(
        organisation=organisation,
        signal_ref=signal.signal_ref,
        kind=OutcomeKind.REFUSED,
        reasons=(
            f"Buurtbeeld could not process this signal ({error}): the error is logged for "
            "its operators; nothing of it was stored, so it may be sent again later",
        ),
    )


@dataclass
class _Planned:
    """A chunk of intake, planned; its events collected; maybe being saved."""

    number: int
    plan: IntakePlan
    outcomes: list[Outcome] = field(default_factory=list)
    prepared: _Prepared | None = None
    saving: Future[list[int]] | None = None

    def save_result(self) -> list[int]:
        assert self.saving is not None
        return self.saving.result()


@dataclass(frozen=True)
class _Prepared:
    """A chunk's events, mapped for storing; the recorder's plan of the write, if any."""

    processing: ProcessingEvent[str]
    stored: list[StoredEvent]
    write: object | None
