"""Stored issue events, read back as contract events or as the picture folds them.

The event log holds the contract JSON with the type in the topic (`Es-Topic`),
`Name@n` for schema version n > 1. Older versions are upcast on the raw JSON
by the same `ContractTypes` the coordination's mapper uses. Other topics (the
intake's receipts, snapshots) are not issue events: `None`.

`issue_event` gives the whole contract event (histories, as-of replays);
`picture_event` only what the picture folds (`projections.picture_events`),
several times faster: the runner's replays use it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from events.contract import ISSUE_EVENT_TYPES, IssueEventType
from events.contract.codec import issue_event_decoder
from projections.picture_events import FoldedEvent, folded_event_decoder
from services.coordination.mapper import ISSUE_CONTRACT

ISSUE_TOPICS = frozenset(t.__name__ for t in ISSUE_EVENT_TYPES)
_raw = msgspec.json.Decoder(dict[str, Any])
_decode_folded = folded_event_decoder.decode


def issue_event(topic: str, body: bytes) -> IssueEventType | None:
    """The issue event stored as `body` under `topic`, or None for other topics."""
    if topic in ISSUE_TOPICS:
        event: IssueEventType = issue_event_decoder.decode(body)
        return event
    upcast = _upcast(topic, body)
    if upcast is None:
        return None
    converted: IssueEventType = msgspec.convert(upcast, IssueEventType)
    return converted


def picture_event(topic: str, body: bytes) -> FoldedEvent | None:
    """`issue_event`, as lean as the picture needs it."""
    if topic in ISSUE_TOPICS:
        event: FoldedEvent = _decode_folded(body)
        return event
    upcast = _upcast(topic, body)
    if upcast is None:
        return None
    converted: FoldedEvent = msgspec.convert(upcast, FoldedEvent)
    return converted


def _upcast(topic: str, body: bytes) -> dict[str, Any] | None:
    """An older version's body as the current contract's, with its `type`; None if no event."""
    name, _, version = topic.partition("@")
    if name not in ISSUE_TOPICS or not version.isdigit():
        return None
    upcast = ISSUE_CONTRACT.upcast(name, int(version), _raw.decode(body))
    upcast["type"] = name
    return upcast
