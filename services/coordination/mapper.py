"""The Issue's events, stored as the public contract (`events.contract.issue_events`)."""

from __future__ import annotations

from eventsourcing.persistence import JSONTranscoder, Transcoder
from eventsourcing.utils import get_topic

from events.contract import ISSUE_EVENT_TYPES
from events.mapping import ContractMapper, ContractTypes
from services.coordination.issue import Issue

ISSUE_CONTRACT = ContractTypes(
    structs={struct.__name__: struct for struct in ISSUE_EVENT_TYPES},
    id_field="issue_id",
)


def issue_event_classes() -> dict[str, type[Issue.Event]]:
    """The Issue's event classes that have a contract type of the same name."""
    return {
        name: value
        for name, value in vars(Issue).items()
        if name in ISSUE_CONTRACT.structs
        and isinstance(value, type)
        and issubclass(value, Issue.Event)
    }


def issue_mapper(
    transcoder: Transcoder | None = None, contract: ContractTypes = ISSUE_CONTRACT
) -> ContractMapper:
    return ContractMapper(
        transcoder=transcoder or JSONTranscoder(),
        contract=contract,
        domain_events=issue_event_classes(),
        aggregate_topics={"IssueOpened": get_topic(Issue)},
    )
