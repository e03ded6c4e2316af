"""An issue's history (CONTRACT.md `…/history`), as one reader may see it.

The history is the issue's own events, read from the event log: who did what
and when is there for every reader; the content (the signals' words,
resolutions, reasons) only for readers who may see the issue's content, and a
signal's personal data only for those of them who need to know it
(`projections.visibility`).

A signal's personal data is sealed in the log (`events.personal_data`): a
reader entitled to it gets it unsealed, as `reporter` and `subjectRef` of the
signal; once its data subject has been forgotten, the signal lists what was
forgotten (`"forgotten": ["reporter"]`) instead. The seals themselves are never
shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from events.contract import (
    IssueEventType,
    IssueOpened,
    SealedPersonalData,
    SignalAttached,
)
from events.personal_data import Unsealed

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
FORGOTTEN = "forgotten"
_to_builtins = msgspec.to_builtins
Unseal = Callable[[SealedPersonalData], Unsealed | None]


def history_entry(
    event: IssueEventType,
    version: int,
    *,
    content: bool,
    personal_data: bool,
    category_shown: str,
    unseal: Unseal,
) -> dict[str, Any]:
    """One event as a history entry: `{"type", "at", "organisation", "version", …}`;
    with `content`, the content, and with `personal_data` as well, a signal's."""
    fields: dict[str, Any] = _to_builtins(event)
    if not content:
        fields = {k: v for k, v in fields.items() if k in PUBLIC_FIELDS}
    elif isinstance(event, IssueOpened | SignalAttached) and event.signal.personal is not None:
        signal = fields["signal"]
        del signal["personal"]
        for sealed in event.signal.personal if personal_data else ():
            value = unseal(sealed)
            if value is None:
                signal.setdefault(FORGOTTEN, []).append(sealed.field)
            else:
                signal[sealed.field] = _to_builtins(value)
    fields["category"] = category_shown
    fields["version"] = version
    return fields
