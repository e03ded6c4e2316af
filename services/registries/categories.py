"""Categories: what a signal is about, how sensitive that is, and how soon someone must own it.

`open` categories are public-space matters; `vertrouwelijk` ones are social
matters whose content only the owner, the reporter and the organisation kinds
the category names may see. Every organisation sees an issue's category group,
so the groups of vertrouwelijk categories say no more than "sociaal".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from services.registries.organisations import OrganisationKind
from services.registries.reading import InvalidField, RegistryFile, check, not_blank

CATEGORY_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$", re.ASCII)
CATEGORY_FIELDS = ("code", "label", "group", "sensitivity", "content_visible_to", "target_hours")


class Sensitivity(StrEnum):
    OPEN = "open"
    VERTROUWELIJK = "vertrouwelijk"


@dataclass(frozen=True, kw_only=True)
class Category:
    """A category; `content_visible_to` matters only for vertrouwelijk ones."""

    code: str
    label: str
    group: str
    sensitivity: Sensitivity
    content_visible_to: frozenset[OrganisationKind] = frozenset()
    target_time_to_ownership: timedelta

    def __post_init__(self) -> None:
        if not isinstance(self.sensitivity, Sensitivity):
            raise InvalidField("sensitivity", f"{self.sensitivity!r} is not a Sensitivity")
        check(
            ("code", category_code_problem(self.code)),
            ("label", not_blank(self.label)),
            ("group", not_blank(self.group)),
            ("target_hours", _positive(self.target_time_to_ownership)),
        )

    def shows_content_to(self, kind: OrganisationKind) -> bool:
        """May any organisation of `kind` see the content of issues in this category?

        Owner and reporter see it regardless; that is the issue's business, not the category's.
        """
        return self.sensitivity is Sensitivity.OPEN or kind in self.content_visible_to


def category_code_problem(text: str) -> str | None:
    if CATEGORY_CODE.fullmatch(text):
        return None
    return f"{text!r} is not a slug: 2-32 of a-z, 0-9 and -, not starting with -"


def _positive(duration: timedelta) -> str | None:
    return None if duration > timedelta(0) else "must be longer than zero"


class Categories:
    """The categories registry, by code."""

    def __init__(self, categories: Iterable[Category]) -> None:
        self._by_code: dict[str, Category] = {}
        for category in categories:
            if category.code in self._by_code:
                raise ValueError(f"category {category.code!r} appears twice")
            self._by_code[category.code] = category

    def get(self, code: str) -> Category | None:
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)


def _open(code: str, label: str, group: str, hours: int) -> Category:
    return Category(
        code=code,
        label=label,
        group=group,
        sensitivity=Sensitivity.OPEN,
        target_time_to_ownership=timedelta(hours=hours),
    )


def _vertrouwelijk(code: str, label: str, hours: int, *kinds: OrganisationKind) -> Category:
    return Category(
        code=code,
        label=label,
        group="sociaal",
        sensitivity=Sensitivity.VERTROUWELIJK,
        content_visible_to=frozenset(kinds),
        target_time_to_ownership=timedelta(hours=hours),
    )


_WIJKTEAM = OrganisationKind.WIJKTEAM
_GEMEENTE = OrganisationKind.GEMEENTE
_WELZIJN = OrganisationKind.WELZIJN
_POLITIE = OrganisationKind.POLITIE

# The categories of DOMAIN.md. Target times: public space within days, safety
# and social matters sooner; radicalisering soonest.
DEFAULT_CATEGORIES = Categories(
    [
        _open("grof-vuil", "Grof vuil", "openbare ruimte", 48),
        _open("onderhoud", "Onderhoud", "openbare ruimte", 120),
        _open("verloedering", "Verloedering", "openbare ruimte", 120),
        _open("overlast", "Overlast", "overlast en veiligheid", 72),
        _open("veiligheid", "Veiligheid", "overlast en veiligheid", 24),
        _vertrouwelijk("eenzaamheid", "Eenzaamheid", 72, _WIJKTEAM, _WELZIJN),
        _vertrouwelijk("armoede", "Armoede", 72, _WIJKTEAM, _GEMEENTE),
        _vertrouwelijk("schulden", "Schulden", 48, _WIJKTEAM, _GEMEENTE),
        _vertrouwelijk("jeugd", "Jeugd", 48, _WIJKTEAM),
        _vertrouwelijk("gezondheid", "Gezondheid", 48, _WIJKTEAM),
        _vertrouwelijk("multiprobleem", "Multiprobleemhuishouden", 48, _WIJKTEAM),
        _vertrouwelijk("radicalisering", "Radicalisering", 24, _WIJKTEAM, _GEMEENTE, _POLITIE),
    ]
)


def load_categories(path: Path) -> Categories:
    """The categories of the TOML file at `path`, for a deployment with its own registry.

    ```toml
    [[category]]
    code = "grof-vuil"
    label = "Grof vuil"
    group = "openbare ruimte"
    sensitivity = "open"                # open | vertrouwelijk
    content_visible_to = ["wijkteam"]   # optional: organisation kinds; for vertrouwelijk ones
    target_hours = 48                   # target time to ownership
    ```

    Raises `RegistryError` naming the file, and the entry and field of every problem.
    """
    file = RegistryFile(path, "category", CATEGORY_FIELDS)
    categories: list[Category] = []
    first_with_code: dict[str, int] = {}
    for entry in file.entries():
        code = entry.string("code", category_code_problem)
        label = entry.string("label", not_blank)
        group = entry.string("group", not_blank)
        sensitivity = entry.choice("sensitivity", Sensitivity)
        kinds = entry.choices("content_visible_to", OrganisationKind)
        target = _hours(entry.positive_number("target_hours"))
        if target is None:
            entry.problem("target_hours", "too long")
        if code in first_with_code:
            entry.problem("code", f"already used by entry {first_with_code[code]}")
        elif code:
            first_with_code[code] = entry.index
        if sensitivity is None or target is None or not entry.ok:
            continue
        categories.append(
            Category(
                code=code,
                label=label,
                group=group,
                sensitivity=sensitivity,
                content_visible_to=kinds,
                target_time_to_ownership=target,
            )
        )
    file.raise_problems()
    return Categories(categories)


def _hours(hours: float) -> timedelta | None:
    try:
        return timedelta(hours=hours)
    except OverflowError:
        return None
