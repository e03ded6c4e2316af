"""Need-to-know (DOMAIN.md): what one organisation may see of the picture.

- Every organisation active in a buurt sees every issue's existence, status,
  owner, age, counts and reporting organisations; of a `vertrouwelijk` issue
  only the category group.
- Content (summary, location, the signals' words, the resolution) of a
  `vertrouwelijk` issue only for the owner, the reporting organisations and
  the kinds the category allows.
- A residents' portal (`bewoners`) sees only the issues of its own signals.

Pure: rows and registries in, what the reader sees out. Whether the content
shows is the only thing that makes two readers' views of one row differ, so a
row has at most two views (`shown`), which can be encoded once and reused for
every reader of the same class (`encoded_view`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

import msgspec

from events.contract import Location
from projections.picture import IssueRow
from projections.picture_events import SignalSummary
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


class SeenRow(Protocol):
    """What need-to-know reads of a row: an `IssueRow`, or a kept copy of one."""

    @property
    def buurt(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def sensitivity(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def reporters(self) -> Sequence[str]: ...


# The key before the one field of a view that changes by itself, as time passes.
AGE_KEY = b'"ageSeconds":'
_AGE_ZERO = AGE_KEY + b"0,"
_encode = msgspec.json.Encoder().encode


class EncodedView(NamedTuple):
    """A row's `IssueView` as JSON, cut around its age: `head + b"%d" % age + tail`.

    `category` is the category it shows (a `vertrouwelijk` one's group when the
    content is hidden), for filtering and counting without decoding.
    """

    head: bytes
    tail: bytes
    category: str


def age_seconds(opened_at: datetime, now: datetime) -> int:
    """Whole seconds from `opened_at` to `now`; 0 for a moment before it."""
    return max(0, int((now - opened_at).total_seconds()))


class Visibility:
    """Decides, per reader and row, what is shown."""

    def __init__(self, categories: Categories) -> None:
        self.categories = categories

    def may_see_buurt(self, reader: Organisation, buurt: str) -> bool:
        return reader.is_active_in(buurt)

    def may_see(self, reader: Organisation, row: SeenRow) -> bool:
        """Existence: every organisation active in the buurt; residents only their own."""
        if not reader.is_active_in(row.buurt):
            return False
        if reader.kind is OrganisationKind.BEWONERS:
            return reader.id in row.reporters
        return True

    def may_see_content(self, reader: Organisation, row: SeenRow) -> bool:
        if row.sensitivity == "open":
            return True
        if reader.kind is OrganisationKind.BEWONERS:
            # A residents' portal sees only the status of its own signals (DOMAIN.md):
            # never a vertrouwelijk issue's content, though it reported on it.
            return False
        if reader.id == row.owner or reader.id in row.reporters:
            return True
        category = self.categories.get(row.category)
        return category is not None and category.shows_content_to(reader.kind)

    def may_see_personal_data(self, reader: Organisation, row: SeenRow, sender: str) -> bool:
        """A signal's personal data (its reporter, the household it names), within the
        content: need-to-know (DOMAIN.md) is the organisation that sent the signal,
        the issue's owner and, for a `vertrouwelijk` category, the kinds it shows its
        content to; not everyone who may see an open category's content."""
        if reader.id in (sender, row.owner):
            return True
        if row.sensitivity == "open":
            return False
        category = self.categories.get(row.category)
        return category is not None and category.shows_content_to(reader.kind)

    def category_group(self, code: str) -> str:
        category = self.categories.get(code)
        return category.group if category is not None else code

    def view(self, reader: Organisation, row: IssueRow, now: datetime) -> IssueView:
        """`row` as `reader` may see it (call `may_see` first)."""
        return self.shown(
            row,
            content=self.may_see_content(reader, row),
            age=age_seconds(row.opened_at, now),
        )

    def shown(self, row: IssueRow, *, content: bool, age: int) -> IssueView:
        """`row` as a reader sees it who may (`content`) or may not see its content."""
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
            age_seconds=age,
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

    def encoded_view(self, row: IssueRow, *, content: bool) -> EncodedView:
        """`shown(row, content=content)` as msgspec encodes it, cut around the age.

        The first `"ageSeconds":` in the JSON is the view's own key: inside a
        string every `"` is escaped, and it comes before the nested content.
        """
        view = self.shown(row, content=content, age=0)
        body = _encode(view)
        cut = body.index(_AGE_ZERO) + len(AGE_KEY)
        return EncodedView(body[:cut], body[cut + 1 :], view.category)
