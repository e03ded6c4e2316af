"""Storing domain events as their public contract JSON.

The library's default mapper stores a Python topic and its own JSON of the
event's attributes. Partners read the event log, so ours stores, for every
event with a contract type of the same name, exactly that contract body:

- topic: the contract type name (`OwnershipClaimed`), or `Name@<n>` for schema
  version n > 1; the JetStream recorder puts it in the `Es-Topic` header;
- state: the msgspec JSON of the contract Struct, fields copied by name from
  the domain event (the originator id becomes the type's id field, `issueId`
  for the Issue's events);
- reading: older schema versions are upcast step by step on the raw JSON,
  then decoded into the current contract type and the domain event.

Events without a contract type (the library's snapshots) are stored as the
library stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
from eventsourcing.domain import CanInitAggregate, DomainEventProtocol
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
)

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# How one event class is written: its contract Struct, id field, other fields, topic.
_Writer = tuple[type[msgspec.Struct], str, tuple[str, ...], str]


@dataclass(frozen=True)
class ContractTypes:
    """The contract Structs by name, their schema versions, and how to upcast old shapes."""

    structs: Mapping[str, type[msgspec.Struct]]
    id_field: str
    versions: Mapping[str, int] = field(default_factory=dict)
    # (name, from_version) -> function from the v(n) JSON object to the v(n+1) one.
    upcasters: Mapping[tuple[str, int], Upcaster] = field(default_factory=dict)
    # Name -> the field holding the originator id, for types where it is not `id_field`.
    id_fields: Mapping[str, str] = field(default_factory=dict)

    def id_field_of(self, name: str) -> str:
        return self.id_fields.get(name, self.id_field)

    def including(self, other: ContractTypes) -> ContractTypes:
        """These types and `other`'s (another aggregate's), each keeping its own id field."""
        return ContractTypes(
            structs={**self.structs, **other.structs},
            id_field=self.id_field,
            versions={**self.versions, **other.versions},
            upcasters={**self.upcasters, **other.upcasters},
            id_fields={
                **self.id_fields,
                **{name: other.id_field_of(name) for name in other.structs},
            },
        )

    def version(self, name: str) -> int:
        return self.versions.get(name, 1)

    def topic(self, name: str) -> str:
        version = self.version(name)
        return name if version == 1 else f"{name}@{version}"

    def upcast(self, name: str, from_version: int, body: dict[str, Any]) -> dict[str, Any]:
        for version in range(from_version, self.version(name)):
            body = self.upcasters[(name, version)](body)
        return body


class ContractMapper(Mapper[str]):
    """A `Mapper` for aggregates whose event classes mirror contract types by name.

    `domain_events` maps names to domain event classes; `aggregate_topics` gives,
    for the "created" event classes, the topic of the aggregate they create.
    """

    def __init__(
        self,
        transcoder: Transcoder,
        contract: ContractTypes,
        domain_events: Mapping[str, type[Any]],
        aggregate_topics: Mapping[str, str],
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder=transcoder, compressor=compressor, cipher=cipher)
        self.contract = contract
        self.domain_events = domain_events
        self.aggregate_topics = aggregate_topics
        self._encoder = msgspec.json.Encoder()
        self._decoders = {
            name: msgspec.json.Decoder(struct) for name, struct in contract.structs.items()
        }
        self._raw = msgspec.json.Decoder(dict[str, Any])
        # Per event class: (contract Struct, its id field, its other fields, topic), or
        # None for classes stored as the library stores them. Worked out once each.
        self._writers: dict[type[Any], _Writer | None] = {}

    def _writer(self, cls: type[Any]) -> _Writer | None:
        try:
            return self._writers[cls]
        except KeyError:
            pass
        name = cls.__name__
        struct = self.contract.structs.get(name)
        writer = None
        if struct is not None and name in self.domain_events:
            id_field = self.contract.id_field_of(name)
            fields = tuple(f for f in struct.__struct_fields__ if f != id_field)
            writer = (struct, id_field, fields, self.contract.topic(name))
        self._writers[cls] = writer
        return writer

    def to_stored_event(self, domain_event: DomainEventProtocol[str]) -> StoredEvent:
        writer = self._writer(type(domain_event))
        if writer is None:
            return super().to_stored_event(domain_event)
        struct, id_field, fields, topic = writer
        values = {f: getattr(domain_event, f) for f in fields}
        values[id_field] = domain_event.originator_id
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic,
            state=self._encoder.encode(struct(**values)),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[str]:
        name, _, version = stored_event.topic.partition("@")
        if name not in self.domain_events or name not in self.contract.structs:
            return super().to_domain_event(stored_event)
        try:
            body = self._decode(name, int(version or 1), stored_event.state)
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as e:
            raise MapperDeserialisationError(
                f"cannot read {stored_event.topic} v{stored_event.originator_version} of "
                f"{stored_event.originator_id}: {e}"
            ) from e
        cls = self.domain_events[name]
        id_field = self.contract.id_field_of(name)
        state = {f: getattr(body, f) for f in body.__struct_fields__ if f != id_field}
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        state["timestamp"] = state.get("at")
        if issubclass(cls, CanInitAggregate):
            state["originator_topic"] = self.aggregate_topics[name]
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return cast(DomainEventProtocol[str], event)

    def _decode(self, name: str, version: int, data: bytes) -> msgspec.Struct:
        if version == self.contract.version(name):
            decoded: msgspec.Struct = self._decoders[name].decode(data)
            return decoded
        upcast = self.contract.upcast(name, version, self._raw.decode(data))
        return self._decoders[name].decode(self._encoder.encode(upcast))
