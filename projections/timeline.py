"""An issue's history (CONTRACT.md `…/history`), as one reader may see it.

The history is the issue's own events, read from the event log: who did what
and when is there for every reader; the content (the signals' words and
personal data, resolutions, reasons) only for readers who may see the issue's
content (`projections.visibility`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from events.contract import IssueEventType

# Fields every reader sees; the rest of an event is content.
PUBLIC_FIELDS = frozenset(
    {
        "type",
        "issueId",
        "buurt",
        "at",
        "organisation",
        "actor",
        "sensitivity",
        "to",
        "previousOwner",
        "into",
        "merged",
        "signalCount",
        "reporters",
        "dueAt",
    }
)
_to_builtins = msgspec.to_builtins


def history_entry(
    event: IssueEventType, version: int, *, content: bool, category_shown: str
) -> dict[str, Any]:
    """One event as a history entry: `{"type", "at", "organisation", "version", …}`."""
    fields: dict[str, Any] = _to_builtins(event)
    if not content:
        fields = {k: v for k, v in fields.items() if k in PUBLIC_FIELDS}
    fields["category"] = category_shown
    fields["version"] = version
    return fields
