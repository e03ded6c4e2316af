"""The registries: organisations, categories and buurten.

Plain values and lookups, read from TOML files; nothing here talks to NATS,
HTTP or a database. `load_registries(settings)` loads all three as CONTRACT.md's
configuration says.
"""

from services.registries.buurten import (
    BUURT_CODE,
    WIJK_CODE,
    Buurt,
    Buurten,
    buurt_code_problem,
    load_buurten,
    load_demo_buurten,
)
from services.registries.categories import (
    DEFAULT_CATEGORIES,
    Categories,
    Category,
    Sensitivity,
    load_categories,
)
from services.registries.loading import Registries, load_registries
from services.registries.organisations import (
    DEMO_ORGANISATIONS,
    ORGANISATION_ID,
    Organisation,
    OrganisationKind,
    Organisations,
    load_organisations,
    token_sha256,
    write_demo_organisations,
)
from services.registries.reading import InvalidField, RegistryError

__all__ = [
    "BUURT_CODE",
    "DEFAULT_CATEGORIES",
    "DEMO_ORGANISATIONS",
    "ORGANISATION_ID",
    "WIJK_CODE",
    "Buurt",
    "Buurten",
    "Categories",
    "Category",
    "InvalidField",
    "Organisation",
    "OrganisationKind",
    "Organisations",
    "Registries",
    "RegistryError",
    "Sensitivity",
    "buurt_code_problem",
    "load_buurten",
    "load_categories",
    "load_demo_buurten",
    "load_organisations",
    "load_registries",
    "token_sha256",
    "write_demo_organisations",
]
