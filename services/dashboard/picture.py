"""The buurt page's list: filters, the picture as the visitor may see it, and what it may do.

Shared by the page itself and its live updates (`services.dashboard.live`),
so both show exactly the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from projections.visibility import IssueView
from services.dashboard.web import Dashboard, Visitor
from services.dashboard.wording import STATUS_FILTER_LABELS, STATUS_LABELS
from services.registries import OrganisationKind

DEFAULT_STATUS = "open"


@dataclass(frozen=True)
class Filters:
    """The buurt page's filters, as its query string carries them (Dutch names)."""

    status: str = DEFAULT_STATUS
    category: str = ""
    owner: str = ""
    mine: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        status = query.get("status", DEFAULT_STATUS)
        return cls(
            status=status if status in STATUS_FILTER_LABELS else DEFAULT_STATUS,
            category=query.get("categorie", "").strip()[:64],
            owner=query.get("eigenaar", "").strip()[:64],
            mine=query.get("mijn", "") not in ("", "0", "nee"),
        )

    def query(self) -> str:
        """The query string for these filters ("" when none is set)."""
        fields = {
            "status": self.status if self.status != DEFAULT_STATUS else "",
            "categorie": self.category,
            "eigenaar": self.owner,
            "mijn": "1" if self.mine else "",
        }
        return urlencode({k: v for k, v in fields.items() if v})

    @property
    def active(self) -> bool:
        return self != Filters()


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

    Raises the queries' refusals (`forbidden`, `invalid`).
    """
    picture = await dashboard.context.projections.queries.buurt_issues(
        visitor.organisation,
        buurt,
        status=filters.status,
        owner=filters.owner or None,
        category=filters.category or None,
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
        "claimable": frozenset(v.id for v in issues if "claim" in available_actions(v, "")),
    }
