"""Where things live in the stream: originator ids as subjects, tracking subjects.

A string originator id with dots becomes subject tokens, so the aggregate
`BU0363FF03.issue.7f3a` lives at `events.BU0363FF03.issue.7f3a` and NATS
permissions and subscriptions can filter by buurt. A UUID id becomes one token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import ProgrammingError

# One subject token: printable ASCII without whitespace, '.', '*' or '>'.
_TOKEN = re.compile(r"[!-)+-\-/-=?-~]+")
# Tokens joined by single dots: what `check_tokens` accepts, in one match.
_TOKENS = re.compile(r"[!-)+-\-/-=?-~]+(?:\.[!-)+-\-/-=?-~]+)*")

UUID_ID_HEADER = "Es-Id-Type"
UUID_ID_VALUE = "uuid"


class InvalidSubjectError(ProgrammingError, ValueError):
    """An originator id or name that cannot be written as NATS subject tokens."""


def check_token(token: str, what: str) -> str:
    """Return `token` if it is one valid subject token, else refuse clearly."""
    if not _TOKEN.fullmatch(token):
        raise InvalidSubjectError(
            f"{what} {token!r} is not a valid NATS subject token: use printable ASCII "
            "without spaces, '.', '*' or '>'"
        )
    return token


def check_tokens(dotted: str, what: str) -> str:
    """Return `dotted` if every dot-separated part is a valid subject token."""
    if not dotted:
        raise InvalidSubjectError(f"{what} must not be empty")
    for token in dotted.split("."):
        if not token:
            raise InvalidSubjectError(
                f"{what} {dotted!r} has an empty subject token (a leading, trailing or "
                "double dot)"
            )
        check_token(token, f"{what} {dotted!r} has token")
    return dotted


@dataclass(frozen=True)
class SubjectScheme:
    """Maps originator ids and tracking names onto subjects under one prefix.

    Events: `<prefix>.<id tokens>`; tracking records: `<prefix>-tracking.<name>`,
    kept off `<prefix>.>` so that partners subscribed there see only events.
    """

    prefix: str = "events"

    def __post_init__(self) -> None:
        check_tokens(self.prefix, "subject prefix")

    @property
    def events_filter(self) -> str:
        return f"{self.prefix}.>"

    @property
    def tracking_prefix(self) -> str:
        return f"{self.prefix}-tracking"

    @property
    def tracking_filter(self) -> str:
        return f"{self.tracking_prefix}.>"

    @property
    def stream_subjects(self) -> list[str]:
        return [self.events_filter, self.tracking_filter]

    def subject_for(self, originator_id: UUID | str) -> str:
        if isinstance(originator_id, UUID):
            return f"{self.prefix}.{originator_id}"
        if _TOKENS.fullmatch(originator_id) is None:  # say exactly what is wrong
            check_tokens(originator_id, "originator id")
        return f"{self.prefix}.{originator_id}"

    def originator_id_of(self, subject: str, id_type: str | None) -> UUID | str:
        """The originator id stored at `subject` (a UUID when the header says so)."""
        originator_id = subject[len(self.prefix) + 1 :]
        return UUID(originator_id) if id_type == UUID_ID_VALUE else originator_id

    def tracking_subject(self, application_name: str) -> str:
        return f"{self.tracking_prefix}.{check_token(application_name, 'application name')}"

    def is_event_subject(self, subject: str) -> bool:
        return subject.startswith(self.prefix + ".")
