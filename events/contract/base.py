"""What every contract type shares: frozen, keyword-only, camelCase on the wire."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec

BUURT_PATTERN = r"^BU\d{4}[0-9A-Z]{4}$"
ORGANISATION_PATTERN = r"^[a-z0-9][a-z0-9-]{1,31}$"
BUURT_CODE = re.compile(BUURT_PATTERN)

BuurtCode = Annotated[str, msgspec.Meta(pattern=BUURT_PATTERN, examples=["BU0363FF03"])]
OrganisationId = Annotated[str, msgspec.Meta(pattern=ORGANISATION_PATTERN, examples=["woonzorg"])]
IssueId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        description="Opaque; starts with the buurt code: <buurt>.issue.<unique>",
        examples=["BU0363FF03.issue.01JD7K3M2X"],
    ),
]
Moment = Annotated[datetime, msgspec.Meta(tz=True, description="ISO 8601 with offset")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Contract(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """Base of every message on the wire. Evolve only by adding fields with defaults."""
