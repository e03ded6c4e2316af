"""The buurt page's list: filters, the picture as the visitor may see it, and what it may do.

Shared by the page itself and its live updates (`services.dashboard.live`),
so both show exactly the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from projections.visibility import IssueView
from services.coordination.refusals import InvalidCommand
from services.dashboard.web import Dashboard, Visitor
from services.dashboard.wording import STATUS_FILTER_LABELS, STATUS_LABELS, local_moment
from services.registries import OrganisationKind

DEFAULT_STATUS = "open"


@dataclass(frozen=True)
class Filters:
    """The buurt page's filters, as its query string carries them (Dutch names).

    `as_of` (`peilmoment`, Dutch time as a `datetime-local` field sends it): the
    picture as it was then, replayed from the log, to read only.
    """

    status: str = DEFAULT_STATUS
    category: str = ""
    owner: str = ""
    mine: bool = False
    as_of: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        status = query.get("status", DEFAULT_STATUS)
        return cls(
            status=status if status in STATUS_FILTER_LABELS else DEFAULT_STATUS,
            category=query.get("categorie", "").strip()[:64],
            owner=query.get("eigenaar", "").strip()[:64],
            mine=query.get("mijn", "") not in ("", "0", "nee"),
            as_of=query.get("peilmoment", "").strip()[:32],
        )

    def query(self) -> str:
        """The query string for these filters ("" when none is set)."""
        fields = {
            "status": self.status if self.status != DEFAULT_STATUS else "",
            "categorie": self.category,
            "eigenaar": self.owner,
            "mijn": "1" if self.mine else "",
            "peilmoment": self.as_of,
        }
        return urlencode({k: v for k, v in fields.items() if v})

    @property
    def active(self) -> bool:
        return self != Filters()

    def moment(self) -> datetime | None:
        """`as_of` as a moment (None: now); a refusal when it is not one."""
        if not self.as_of:
            return None
        try:
            return local_moment(self.as_of)
        except ValueError as e:
            raise InvalidCommand(f"peilmoment {self.as_of!r}: not a date and time") from e


def available_actions(view: IssueView, organisation_id: str) -> frozenset[str]:
    """The verbs the issue page offers `organisation_id` (the domain has the last word)."""
    mine = view.owner == organisation_id
    if view.status in ("unowned", "escalated"):
        return frozenset({"claim"})
    if view.status == "owned" and mine:
        return frozenset({"handover", "release", "resolve"})
    if view.status == "handover-pending":
        if view.handover_to == organisation_id:
            return frozenset({"accept-handover", "decline-handover"})
        if mine:
            return frozenset({"release", "resolve"})
    if view.status == "resolved":
        return frozenset({"reopen"})
    return frozenset()


def handover_candidates(dashboard: Dashboard, visitor: Visitor, buurt: str) -> list[Any]:
    """The organisations an issue of `buurt` can be handed to, by name."""
    return sorted(
        (
            o
            for o in dashboard.context.registries.organisations
            if o.id != visitor.organisation.id
            and o.is_active_in(buurt)
            and o.kind is not OrganisationKind.BEWONERS
        ),
        key=lambda o: o.name,
    )


async def picture_values(
    dashboard: Dashboard,
    visitor: Visitor,
    buurt: str,
    filters: Filters,
    changed: Collection[str] = (),
) -> dict[str, Any]:
    """What `_picture.html` renders: the issues, their counts, and what the visitor may do.

    Raises the queries' refusals (`forbidden`, `invalid`). As of a moment
    (`filters.as_of`) nothing can be done: the past is read only.
    """
    as_of = filters.moment()
    picture = await dashboard.context.projections.queries.buurt_issues(
        visitor.organisation,
        buurt,
        status=filters.status,
        owner=filters.owner or None,
        category=filters.category or None,
        as_of=as_of,
    )
    issues = picture.issues
    if filters.mine:
        issues = [v for v in issues if v.id in picture.mine]
    by_status = Counter(v.status for v in issues)
    by_category = Counter(dashboard.category_label(v.category) for v in issues)
    query = filters.query()
    return {
        "buurt": buurt,
        "here": f"/buurten/{buurt}" + (f"?{query}" if query else ""),
        "picture": picture,
        "issues": issues,
        "mine": frozenset(picture.mine),
        "status_counts": [
            (s, STATUS_LABELS[s], by_status[s]) for s in STATUS_LABELS if by_status[s]
        ],
        "category_counts": sorted(by_category.items()),
        "filters": filters,
        "changed": frozenset(changed),
        "past": as_of is not None,
        "claimable": frozenset(
            v.id for v in issues if as_of is None and "claim" in available_actions(v, "")
        ),
    }
