"""The public event contract, version 1: what partners publish, read and get back.

msgspec Structs, camelCase on the wire, evolved only by adding fields with
defaults. JSON Schema for each body is checked in under `events/schemas/`.
"""

from events.contract.commands import (
    COMMANDS,
    Accepted,
    AcceptHandover,
    Claim,
    Command,
    DeclineHandover,
    Handover,
    Merge,
    Refused,
    Release,
    Reopen,
    Reply,
    Resolve,
)
from events.contract.intake import Location, Rejection, Reporter, Signal
from events.contract.issue_events import (
    ISSUE_EVENT_TYPES,
    HandoverAccepted,
    HandoverDeclined,
    HandoverOffered,
    IssueAbsorbed,
    IssueEscalated,
    IssueEvent,
    IssueEventType,
    IssueMerged,
    IssueOpened,
    IssueReopened,
    IssueResolved,
    OwnershipClaimed,
    OwnershipReleased,
    SignalAttached,
    SignalRecord,
)
from events.contract.receipts import SignalReceived

__all__ = [
    "COMMANDS",
    "ISSUE_EVENT_TYPES",
    "AcceptHandover",
    "Accepted",
    "Claim",
    "Command",
    "DeclineHandover",
    "Handover",
    "HandoverAccepted",
    "HandoverDeclined",
    "HandoverOffered",
    "IssueAbsorbed",
    "IssueEscalated",
    "IssueEvent",
    "IssueEventType",
    "IssueMerged",
    "IssueOpened",
    "IssueReopened",
    "IssueResolved",
    "Location",
    "Merge",
    "OwnershipClaimed",
    "OwnershipReleased",
    "Refused",
    "Rejection",
    "Release",
    "Reopen",
    "Reply",
    "Reporter",
    "Resolve",
    "Signal",
    "SignalAttached",
    "SignalReceived",
    "SignalRecord",
]
