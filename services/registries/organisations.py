"""Organisations: the partners, who they are, where they work, and how their token is recognised.

Tokens are never stored: the organisations file holds the SHA-256 of each
organisation's API token, and a presented token is hashed and compared in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from services.registries.buurten import buurt_code_problem
from services.registries.reading import InvalidField, RegistryFile, check, not_blank

ORGANISATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$", re.ASCII)
TOKEN_SHA256 = re.compile(r"^[0-9a-f]{64}$", re.ASCII)
ORGANISATION_FIELDS = ("id", "kind", "name", "token_sha256", "buurten")


class OrganisationKind(StrEnum):
    WONINGCORPORATIE = "woningcorporatie"
    WIJKTEAM = "wijkteam"
    GEMEENTE = "gemeente"
    WELZIJN = "welzijn"
    POLITIE = "politie"
    BEWONERS = "bewoners"


@dataclass(frozen=True, kw_only=True)
class Organisation:
    """A partner. `buurten` None means it is active everywhere."""

    id: str
    kind: OrganisationKind
    name: str
    token_sha256: str
    buurten: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, OrganisationKind):
            raise InvalidField("kind", f"{self.kind!r} is not an OrganisationKind")
        buurten = sorted(self.buurten or ())
        check(
            ("id", organisation_id_problem(self.id)),
            ("name", not_blank(self.name)),
            ("token_sha256", token_sha256_problem(self.token_sha256)),
            ("buurten", None if self.buurten is None else no_buurten_problem(self.buurten)),
            *(("buurten", buurt_code_problem(code)) for code in buurten),
        )

    def is_active_in(self, buurt: str) -> bool:
        return self.buurten is None or buurt in self.buurten


class Organisations:
    """The organisations registry: by id, or by the token an organisation presents."""

    def __init__(self, organisations: Iterable[Organisation]) -> None:
        self._by_id: dict[str, Organisation] = {}
        for organisation in organisations:
            if organisation.id in self._by_id:
                raise ValueError(f"organisation {organisation.id!r} appears twice")
            self._by_id[organisation.id] = organisation

    def get(self, organisation_id: str) -> Organisation | None:
        return self._by_id.get(organisation_id)

    def by_token(self, token: str) -> Organisation | None:
        """The organisation whose token this is, or None."""
        if not token:
            return None
        digest = token_sha256(token)
        found = None
        # Every digest is compared, each in constant time: no early exit to time.
        for organisation in self._by_id.values():
            if hmac.compare_digest(organisation.token_sha256, digest):
                found = organisation
        return found

    def __contains__(self, organisation_id: object) -> bool:
        return organisation_id in self._by_id

    def __iter__(self) -> Iterator[Organisation]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


def organisation_id_problem(text: str) -> str | None:
    if ORGANISATION_ID.fullmatch(text):
        return None
    return f"{text!r} is not a slug: 2-32 of a-z, 0-9 and -, not starting with -"


def no_buurten_problem(buurten: Collection[str]) -> str | None:
    # An empty list would silently make an organisation active nowhere.
    return None if buurten else "must name at least one buurt; leave it out for everywhere"


def token_sha256_problem(text: str) -> str | None:
    if TOKEN_SHA256.fullmatch(text):
        return None
    return "must be 64 lowercase hex digits (a SHA-256)"


def token_sha256(token: str) -> str:
    """The hex SHA-256 of `token` (UTF-8), as the organisations file stores it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def load_organisations(path: Path) -> Organisations:
    """The organisations of the TOML file at `path` (CONTRACT.md's format).

    Raises `RegistryError` naming the file, and the entry and field of every problem;
    duplicate ids and two organisations sharing one token are refused.
    """
    file = RegistryFile(path, "organisation", ORGANISATION_FIELDS)
    organisations: list[Organisation] = []
    first_with_id: dict[str, int] = {}
    first_with_token: dict[str, int] = {}
    for entry in file.entries():
        organisation_id = entry.string("id", organisation_id_problem)
        kind = entry.choice("kind", OrganisationKind)
        name = entry.string("name", not_blank)
        digest = entry.string("token_sha256", token_sha256_problem)
        buurten = entry.optional_strings("buurten", buurt_code_problem)
        if buurten is not None and (problem := no_buurten_problem(buurten)) is not None:
            entry.problem("buurten", problem)
        if organisation_id in first_with_id:
            entry.problem("id", f"already used by entry {first_with_id[organisation_id]}")
        if digest in first_with_token:
            entry.problem("token_sha256", f"same token as entry {first_with_token[digest]}")
        if organisation_id:
            first_with_id.setdefault(organisation_id, entry.index)
        if digest:
            first_with_token.setdefault(digest, entry.index)
        if kind is None or not entry.ok:
            continue
        organisations.append(
            Organisation(
                id=organisation_id,
                kind=kind,
                name=name,
                token_sha256=digest,
                buurten=None if buurten is None else frozenset(buurten),
            )
        )
    file.raise_problems()
    return Organisations(organisations)


# (id, kind, name, buurten): Amsterdam Nieuw-West partners; None = active everywhere.
DEMO_ORGANISATIONS: tuple[tuple[str, OrganisationKind, str, tuple[str, ...] | None], ...] = (
    ("woonzorg", OrganisationKind.WONINGCORPORATIE, "Woonzorg Nederland", None),
    ("stadgenoot", OrganisationKind.WONINGCORPORATIE, "Stadgenoot", None),
    ("eigen-haard", OrganisationKind.WONINGCORPORATIE, "Eigen Haard", None),
    ("wijkteam-nieuw-west", OrganisationKind.WIJKTEAM, "Wijkteam Nieuw-West", None),
    (
        "ouder-kindteam-osdorp",
        OrganisationKind.WIJKTEAM,
        "Ouder- en Kindteam Osdorp",
        ("BU0363FF03", "BU0363FG01", "BU0363FG02", "BU0363FH01", "BU0363FH02", "BU0363FJ01"),
    ),
    ("gemeente-amsterdam", OrganisationKind.GEMEENTE, "Gemeente Amsterdam", None),
    ("handhaving-nieuw-west", OrganisationKind.GEMEENTE, "Handhaving stadsdeel Nieuw-West", None),
    ("streetcornerwork", OrganisationKind.WELZIJN, "Streetcornerwork", None),
    ("buurtwerk-nieuw-west", OrganisationKind.WELZIJN, "Buurtwerk Nieuw-West", None),
    ("politie-amsterdam", OrganisationKind.POLITIE, "Politie Amsterdam, team Nieuw-West", None),
    ("bewonersportaal", OrganisationKind.BEWONERS, "Bewonersportaal Nieuw-West", None),
)

_DEMO_HEADER = """\
# Buurtbeeld demo organisations, written by `buurtbeeld up` on first start.
# Only the SHA-256 of each API token is stored here; the tokens themselves were
# shown once, in the start-up log (event demo.tokens). To start over, delete this
# file; for real use, write your own and point BUURTBEELD_ORGANISATIONS at it.
"""


def write_demo_organisations(path: Path) -> dict[str, str]:
    """Write the demo organisations file at `path` (mode 0600) with a fresh token for each.

    Returns {organisation id: token}: the only time the tokens exist in the clear.
    Never overwrites: raises FileExistsError if `path` exists. The file appears
    whole or not at all.
    """
    tokens = {org_id: secrets.token_urlsafe(32) for org_id, *_ in DEMO_ORGANISATIONS}
    blocks = [_DEMO_HEADER]
    for org_id, kind, name, buurten in DEMO_ORGANISATIONS:
        lines = [
            "[[organisation]]",
            f"id = {_toml_string(org_id)}",
            f"kind = {_toml_string(kind.value)}",
            f"name = {_toml_string(name)}",
            f"token_sha256 = {_toml_string(token_sha256(tokens[org_id]))}",
        ]
        if buurten is not None:
            lines.append(f"buurten = [{', '.join(_toml_string(code) for code in buurten)}]")
        blocks.append("\n".join(lines) + "\n")
    _write_new_private_file(path, "\n".join(blocks))
    return tokens


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes).
    return json.dumps(text, ensure_ascii=False)


def _write_new_private_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        # A hard link, unlike a rename, refuses to replace a file that is there.
        os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
