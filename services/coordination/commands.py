"""Acting on an issue: CONTRACT.md's commands, each load → call → save.

The base of the `Coordination` application: how its events are stored (as the
contract JSON, through a process recorder so that intake can save its tracking
record with its events) and the commands of `cmd.<org>.<verb>`. Every refusal
is a `Refusal` with its contract code, so each edge maps them once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    ProcessRecorder,
    Recording,
    Tracking,
)
from eventsourcing.utils import EnvType

from events.contract import (
    COMMANDS,
    Accepted,
    AcceptHandover,
    Claim,
    Command,
    DeclineHandover,
    Handover,
    Merge,
    Release,
    Reopen,
    Resolve,
)
from services.coordination.issue import Issue
from services.coordination.mapper import issue_mapper
from services.coordination.refusals import Conflict, Forbidden, InvalidCommand, NotFound
from services.registries.organisations import Organisations

Clock = Callable[[], datetime]
# Concurrent changes to one issue survived before giving up with `Conflict`.
MAX_ATTEMPTS = 5


def utc_now() -> datetime:
    return datetime.now(UTC)


class IssueCommands(Application[str]):
    """The commands on issues, for organisations in the organisations registry."""

    recorder: ProcessRecorder

    def __init__(
        self, env: EnvType | None = None, *, organisations: Organisations, now: Clock = utc_now
    ) -> None:
        self.organisations = organisations
        self.now = now
        super().__init__(env)
        self._verbs: dict[str, Callable[[str, Any], int]] = {
            "claim": self.claim,
            "release": self.release,
            "handover": self.offer_handover,
            "accept-handover": self.accept_handover,
            "decline-handover": self.decline_handover,
            "resolve": self.resolve,
            "reopen": self.reopen,
            "merge": self.merge,
        }

    def construct_mapper(self) -> Mapper[str]:
        return issue_mapper(self.construct_transcoder())

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    def save(
        self, *objs: Any, tracking: Tracking | None = None, **kwargs: Any
    ) -> list[Recording[str]]:
        """Store the new events of `objs`, and `tracking` with them, in one atomic write."""
        processing = ProcessingEvent[str](tracking=tracking)
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                # What `collect_events` does, without its runtime Protocol checks
                # (tens of microseconds an object on Python 3.11; intake saves hundreds).
                processing.events.extend(obj.collect_events())
                processing.aggregates[obj.id] = obj
            else:
                processing.collect_events(obj)
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def get_issue(self, issue_id: str) -> Issue:
        """The issue as stored now; `NotFound` when there is none."""
        if not Issue.is_issue_id(issue_id):
            raise NotFound(f"{issue_id[:128]!r} is not an issue id")
        try:
            issue: Issue = self.repository.get(issue_id)
        except AggregateNotFoundError:
            raise NotFound(f"there is no issue {issue_id}") from None
        assert isinstance(issue, Issue)  # only issues have ids of that shape
        return issue

    # -- the contract's verbs ------------------------------------------------

    def handle(self, organisation: str, verb: str, command: Command) -> Accepted:
        """Carry out `verb` (CONTRACT.md's name) for `organisation`, or raise a `Refusal`."""
        act, expected = self._verbs.get(verb), COMMANDS.get(verb)
        if act is None or expected is None:
            raise InvalidCommand(f"{verb[:32]!r} is not a verb: use one of {', '.join(COMMANDS)}")
        if not isinstance(command, expected):
            given = type(command).__name__
            raise InvalidCommand(f"{verb} takes a {expected.__name__}, not a {given}")
        return Accepted(issue_id=command.issue_id, version=act(organisation, command))

    def claim(self, organisation: str, command: Claim) -> int:
        """`organisation` takes regie of an unowned issue. Returns the issue's new version."""
        return self._act(
            organisation, command, lambda i, at: i.claim(organisation, at, command.actor)
        )

    def release(self, organisation: str, command: Release) -> int:
        return self._act(
            organisation, command, lambda i, at: i.release(organisation, at, command.actor)
        )

    def offer_handover(self, organisation: str, command: Handover) -> int:
        return self._act(
            organisation,
            command,
            lambda i, at: i.offer_handover(organisation, command.to, at, command.actor),
        )

    def accept_handover(self, organisation: str, command: AcceptHandover) -> int:
        return self._act(
            organisation, command, lambda i, at: i.accept_handover(organisation, at, command.actor)
        )

    def decline_handover(self, organisation: str, command: DeclineHandover) -> int:
        return self._act(
            organisation, command, lambda i, at: i.decline_handover(organisation, at, command.actor)
        )

    def resolve(self, organisation: str, command: Resolve) -> int:
        return self._act(
            organisation,
            command,
            lambda i, at: i.resolve(organisation, command.resolution, at, command.actor),
        )

    def reopen(self, organisation: str, command: Reopen) -> int:
        return self._act(
            organisation,
            command,
            lambda i, at: i.reopen(organisation, command.reason, at, command.actor),
        )

    def merge(self, organisation: str, command: Merge) -> int:
        """Close the issue into `command.into`, which counts its signals from now on."""

        def merge(issues: list[Issue], at: datetime) -> None:
            merged, target = issues
            if merged.buurt != target.buurt:
                raise InvalidCommand(f"{merged.id} and {target.id} are in different buurten")
            merged.merge_into(organisation, target.id, at, command.actor)
            reporters = sorted(merged.reporters)
            target.absorb(
                organisation, merged.id, merged.signal_count, reporters, at, command.actor
            )

        return self._act_on(organisation, [command.issue_id, command.into], merge)

    # -- load, call, save ----------------------------------------------------

    def _act(
        self, organisation: str, command: Command, act: Callable[[Issue, datetime], None]
    ) -> int:
        return self._act_on(organisation, [command.issue_id], lambda issues, at: act(issues[0], at))

    def _act_on(
        self,
        organisation: str,
        issue_ids: Sequence[str],
        act: Callable[[list[Issue], datetime], None],
    ) -> int:
        """Load the issues, check `organisation` may act there, `act`, save them together.

        Someone else changing one of them in between is retried on fresh copies
        (the rules decide again), a bounded number of times; then `Conflict`.
        """
        if organisation not in self.organisations:
            raise Forbidden(f"{organisation[:32]!r} is not in the organisations file")
        for _ in range(MAX_ATTEMPTS):
            issues = [self.get_issue(issue_id) for issue_id in issue_ids]
            for issue in issues:
                self._check_active(organisation, issue)
            act(issues, self.now())
            try:
                self.save(*issues)
            except IntegrityError:
                continue
            return issues[0].version
        raise Conflict(f"{issue_ids[0]} kept changing while {organisation} acted on it; try again")

    def _check_active(self, organisation: str, issue: Issue) -> None:
        known = self.organisations.get(organisation)
        if known is None or not known.is_active_in(issue.buurt):
            raise Forbidden(f"{organisation} is not active in buurt {issue.buurt}")
