"""Stored issue events, read back as contract events.

The event log holds the contract JSON with the type in the topic (`Es-Topic`),
`Name@n` for schema version n > 1. Older versions are upcast on the raw JSON
by the same `ContractTypes` the coordination's mapper uses. Other topics (the
intake's receipts, snapshots) are not issue events: `None`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from events.contract import ISSUE_EVENT_TYPES, IssueEventType
from events.contract.codec import issue_event_decoder
from services.coordination.mapper import ISSUE_CONTRACT

ISSUE_TOPICS = frozenset(t.__name__ for t in ISSUE_EVENT_TYPES)
_raw = msgspec.json.Decoder(dict[str, Any])


def issue_event(topic: str, body: bytes) -> IssueEventType | None:
    """The issue event stored as `body` under `topic`, or None for other topics."""
    if topic in ISSUE_TOPICS:
        event: IssueEventType = issue_event_decoder.decode(body)
        return event
    name, _, version = topic.partition("@")
    if name not in ISSUE_TOPICS or not version.isdigit():
        return None
    upcast = ISSUE_CONTRACT.upcast(name, int(version), _raw.decode(body))
    upcast["type"] = name
    converted: IssueEventType = msgspec.convert(upcast, IssueEventType)
    return converted
