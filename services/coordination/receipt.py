"""The Receipt aggregate: one partner signal, processed once.

Its id is derived from `<organisation>/<signalRef>`, so recording a second
receipt for the same signal clashes with the first in the event store (an
`IntegrityError`): that, not JetStream's two-minute duplicate window, is what
makes intake idempotent however late a signal is re-sent. Receipts live at
`receipts.<organisation>.<hash>`, outside every buurt's subjects.
"""

from __future__ import annotations

from datetime import datetime
from hashlib import sha256
from typing import Any

from eventsourcing.utils import get_topic

from services.coordination.issue import StrAggregate

RECEIPTS = "receipts"


class Receipt(StrAggregate):
    """That `organisation`'s signal `signal_ref` was processed onto issue `issue_id`."""

    @staticmethod
    def create_id(organisation: str, signal_ref: str) -> str:
        """`receipts.<organisation>.<sha256(signal_ref) hex, first 40>`: valid subject tokens."""
        digest = sha256(signal_ref.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return f"{RECEIPTS}.{organisation}.{digest}"

    @classmethod
    def record(cls, organisation: str, signal_ref: str, issue_id: str, at: datetime) -> Receipt:
        return cls._create(
            cls.SignalReceived,
            id=cls.create_id(organisation, signal_ref),
            timestamp=at,
            organisation=organisation,
            signal_ref=signal_ref,
            issue_id=issue_id,
            at=at,
        )

    @classmethod
    def received(
        cls, organisation: str, signal_ref: str, issue_id: str, at: datetime
    ) -> Receipt.SignalReceived:
        """The event `record` creates the receipt with, without making the aggregate.

        Intake only stores receipts (it never acts on one it makes), and makes
        one a signal: building each aggregate, only to take its event back out,
        was a good part of planning.
        """
        fields: dict[str, Any] = {  # the event class is made a dataclass by its metaclass
            "originator_topic": _TOPIC,
            "originator_id": cls.create_id(organisation, signal_ref),
            "originator_version": cls.INITIAL_VERSION,
            "timestamp": at,
            "organisation": organisation,
            "signal_ref": signal_ref,
            "issue_id": issue_id,
            "at": at,
        }
        return cls.SignalReceived(**fields)

    class SignalReceived(StrAggregate.Created):
        organisation: str
        signal_ref: str
        issue_id: str
        at: datetime

    def __init__(self, organisation: str, signal_ref: str, issue_id: str, at: datetime) -> None:
        self.organisation = organisation
        self.signal_ref = signal_ref
        self.issue_id = issue_id
        self.at = at


_TOPIC = get_topic(Receipt)
