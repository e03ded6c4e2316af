"""Need-to-know (DOMAIN.md): what one organisation may see of the picture.

- Every organisation active in a buurt sees every issue's existence, status,
  owner, age, counts and reporting organisations; of a `vertrouwelijk` issue
  only the category group.
- Content (summary, location, the signals' words, the resolution) of a
  `vertrouwelijk` issue only for the owner, the reporting organisations and
  the kinds the category allows.
- A residents' portal (`bewoners`) sees only the issues of its own signals.

Pure: rows and registries in, what the reader sees out.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from events.contract import Location
from projections.picture import IssueRow, SignalSummary
from services.registries import Categories, Organisation
from services.registries.organisations import OrganisationKind


class IssueView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """`Issue` of CONTRACT.md, as one reader may see it.

    `contentVisible` says whether the content fields (`summary`, `location`,
    `signals`, `resolution`) are shown; when false they are null, and a
    `vertrouwelijk` issue's `category` is its category group.
    """

    id: str
    buurt: str
    category: str
    category_group: str
    sensitivity: str
    status: str
    owner: str | None
    owned_since: datetime | None
    opened_at: datetime
    updated_at: datetime
    age_seconds: int
    signal_count: int
    reporters: list[str]
    version: int
    handover_to: str | None
    escalated_at: datetime | None
    due_at: datetime | None
    resolved_at: datetime | None
    merged_into: str | None
    content_visible: bool
    summary: str | None = None
    location: Location | None = None
    signals: list[SignalSummary] | None = None
    resolution: str | None = None


class Visibility:
    """Decides, per reader and row, what is shown."""

    def __init__(self, categories: Categories) -> None:
        self.categories = categories

    def may_see_buurt(self, reader: Organisation, buurt: str) -> bool:
        return reader.is_active_in(buurt)

    def may_see(self, reader: Organisation, row: IssueRow) -> bool:
        """Existence: every organisation active in the buurt; residents only their own."""
        if not reader.is_active_in(row.buurt):
            return False
        if reader.kind is OrganisationKind.BEWONERS:
            return reader.id in row.reporters
        return True

    def may_see_content(self, reader: Organisation, row: IssueRow) -> bool:
        if row.sensitivity == "open":
            return True
        if reader.id == row.owner or reader.id in row.reporters:
            return True
        category = self.categories.get(row.category)
        return category is not None and category.shows_content_to(reader.kind)

    def category_group(self, code: str) -> str:
        category = self.categories.get(code)
        return category.group if category is not None else code

    def view(self, reader: Organisation, row: IssueRow, now: datetime) -> IssueView:
        """`row` as `reader` may see it (call `may_see` first)."""
        content = self.may_see_content(reader, row)
        group = self.category_group(row.category)
        shown_category = row.category if content or row.sensitivity == "open" else group
        return IssueView(
            id=row.id,
            buurt=row.buurt,
            category=shown_category,
            category_group=group,
            sensitivity=row.sensitivity,
            status=row.status,
            owner=row.owner,
            owned_since=row.owned_since,
            opened_at=row.opened_at,
            updated_at=row.updated_at,
            age_seconds=max(0, int((now - row.opened_at).total_seconds())),
            signal_count=row.signal_count,
            reporters=list(row.reporters),
            version=row.version,
            handover_to=row.handover_to,
            escalated_at=row.escalated_at,
            due_at=row.due_at,
            resolved_at=row.resolved_at,
            merged_into=row.merged_into,
            content_visible=content,
            summary=row.summary if content else None,
            location=row.location if content else None,
            signals=list(row.signals) if content else None,
            resolution=row.resolution if content else None,
        )
