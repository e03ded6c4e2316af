"""JSON Schema for every message body, checked in under `events/schemas/`.

    python -m events.contract.schemas      # rewrite the checked-in schemas
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from events.contract.commands import (
    COMMANDS,
    FORGET_PERSONAL_DATA,
    Accepted,
    ForgetPersonalData,
    PersonalDataForgotten,
    Refused,
)
from events.contract.intake import Rejection, Signal
from events.contract.issue_events import IssueEventType
from events.contract.receipts import SignalReceived

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

BODIES: dict[str, Any] = {
    "intake.signal": Signal,
    "rejected": Rejection,
    "events.issue": IssueEventType,
    "events.receipt": SignalReceived,
    **{f"cmd.{verb}": kind for verb, kind in COMMANDS.items()},
    "reply.accepted": Accepted,
    "reply.refused": Refused,
    f"cmd.{FORGET_PERSONAL_DATA}": ForgetPersonalData,
    "reply.forgotten": PersonalDataForgotten,
}


def render() -> dict[str, str]:
    """File name -> schema text, exactly as checked in."""
    rendered = {}
    for name, kind in BODIES.items():
        schema = msgspec.json.schema(kind)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = f"Buurtbeeld {name} (contract version 1)"
        rendered[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path)
