"""The contract's JSON Schemas on FastStream handlers, for the AsyncAPI document.

Handlers take the raw body (the edge decodes it with msgspec, and answers what
does not decode); their annotations carry the contract type's JSON Schema, the
one checked in under `events/schemas/`, with its references written out in
place, since FastStream builds the document through pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from pydantic import WithJsonSchema


def contract_payload(kind: Any) -> WithJsonSchema:
    """Annotation: the body is `kind` (a msgspec Struct) as JSON."""
    [schema], components = msgspec.json.schema_components([kind])
    return WithJsonSchema(_without_references(schema, components))


def contract_payloads(kinds: Mapping[str, Any]) -> WithJsonSchema:
    """Annotation: the body is one of `kinds` as JSON, each titled by its name."""
    schemas, components = msgspec.json.schema_components(list(kinds.values()))
    return WithJsonSchema(
        {
            "oneOf": [
                {**_without_references(schema, components), "title": name}
                for name, schema in zip(kinds, schemas, strict=True)
            ]
        }
    )


def _without_references(node: Any, components: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = str(node["$ref"]).rsplit("/", 1)[-1]
            return _without_references(components[name], components)
        return {key: _without_references(value, components) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_references(item, components) for item in node]
    return node
