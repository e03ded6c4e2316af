"""The three registries together, loaded as the settings say (CONTRACT.md's configuration).

- Organisations: from `BUURTBEELD_ORGANISATIONS`, or `$BUURTBEELD_DATA/organisations.toml`.
  Without the variable, a missing file is created with the demo organisations, and
  their tokens are handed back once. With it, a missing file is an error.
- Buurten: from `BUURTBEELD_BUURTEN`, or the shipped Amsterdam Nieuw-West demo list.
- Categories: the categories of DOMAIN.md (`DEFAULT_CATEGORIES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.registries.buurten import Buurten, load_buurten, load_demo_buurten
from services.registries.categories import DEFAULT_CATEGORIES, Categories
from services.registries.organisations import (
    Organisations,
    load_organisations,
    write_demo_organisations,
)
from services.registries.reading import RegistryError
from services.settings import Settings

SHIPPED_DEMO_LIST = "shipped demo list"
BUILT_IN = "built in"


@dataclass(frozen=True, kw_only=True)
class Registries:
    """Who the partners are, which categories and buurten exist, and where that came from."""

    organisations: Organisations
    categories: Categories
    buurten: Buurten
    organisations_source: str
    categories_source: str = BUILT_IN
    buurten_source: str = SHIPPED_DEMO_LIST
    # Only on the start that created the demo organisations file; never shown again.
    demo_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)

    def buurten_of_unknown_organisations(self) -> dict[str, list[str]]:
        """{organisation id: the buurten it is active in that the buurten list lacks}."""
        if not self.buurten.enforces_list:
            return {}
        unknown = {
            organisation.id: sorted(b for b in organisation.buurten or () if b not in self.buurten)
            for organisation in self.organisations
        }
        return {org_id: codes for org_id, codes in unknown.items() if codes}


def load_registries(settings: Settings) -> Registries:
    """Load (and on a first start, create) the registries `settings` point at.

    Raises `RegistryError` when a file is missing or unusable.
    """
    # Buurten first: a demo file must not be written when the start fails anyway,
    # or its tokens would never be shown.
    if settings.buurten_file is None:
        buurten, buurten_source = load_demo_buurten(), SHIPPED_DEMO_LIST
    else:
        buurten, buurten_source = load_buurten(settings.buurten_file), str(settings.buurten_file)
    path = settings.organisations_path
    demo_tokens: dict[str, str] = {}
    if not path.exists():
        if not settings.creates_demo_organisations:
            raise RegistryError(
                path,
                ["no such file (named by BUURTBEELD_ORGANISATIONS, so no demo file is created)"],
            )
        demo_tokens = write_demo_organisations(path)
    return Registries(
        organisations=load_organisations(path),
        categories=DEFAULT_CATEGORIES,
        buurten=buurten,
        organisations_source=str(path),
        buurten_source=buurten_source,
        demo_tokens=demo_tokens,
    )
