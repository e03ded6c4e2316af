"""The coordination's events, stored as the public contract (`events.contract`).

The Issue's events as `issue_events`, intake's receipts as `receipts`.
"""

from __future__ import annotations

from eventsourcing.persistence import JSONTranscoder, Transcoder
from eventsourcing.utils import get_topic

from events.contract import ISSUE_EVENT_TYPES, SignalReceived
from events.mapping import ContractMapper, ContractTypes
from services.coordination.issue import Issue
from services.coordination.receipt import Receipt

ISSUE_CONTRACT = ContractTypes(
    structs={struct.__name__: struct for struct in ISSUE_EVENT_TYPES},
    id_field="issue_id",
)
RECEIPT_CONTRACT = ContractTypes(
    structs={"SignalReceived": SignalReceived},
    id_field="receipt_id",
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
    """Issue events as `contract` says, and receipts, stored as their contract JSON."""
    return ContractMapper(
        transcoder=transcoder or JSONTranscoder(),
        contract=contract.including(RECEIPT_CONTRACT),
        domain_events={**issue_event_classes(), "SignalReceived": Receipt.SignalReceived},
        aggregate_topics={"IssueOpened": get_topic(Issue), "SignalReceived": get_topic(Receipt)},
    )
