"""Intake's receipts: proof that one partner signal was processed, and onto which issue.

One receipt per `<organisation>/<signalRef>`, at
`events.receipts.<organisation>.<first 40 hex digits of sha256(signalRef)>`:
outside every buurt's `events.<buurt>.>`, and stored at most once, so the
same signal is never processed twice however late it is re-sent.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from events.contract.base import Contract, IssueId, Moment, OrganisationId


class SignalReceived(Contract, frozen=True, kw_only=True, tag_field="type", tag=True):
    """`organisation`'s signal `signalRef` was processed onto issue `issueId`."""

    receipt_id: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=128,
            description="receipts.<organisation>.<sha256(signalRef) hex, first 40>",
        ),
    ]
    organisation: OrganisationId
    signal_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    issue_id: IssueId
    at: Moment
