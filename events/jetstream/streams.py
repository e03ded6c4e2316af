"""The streams the event store writes to, and creating them.

The events stream is the system of record: file storage, no age limit, no
deletes, no purges, atomic batches and direct gets allowed. Snapshots are a
cache that can be rebuilt from events, so they live in a stream of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import nats.errors
import nats.js.errors
from eventsourcing.persistence import OperationalError, ProgrammingError
from nats.aio.client import Client as NATS
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig


@dataclass(frozen=True)
class StreamSpec:
    """What one stream must look like."""

    name: str
    subjects: tuple[str, ...]
    replicas: int = 1
    immutable: bool = True
    description: str = ""

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            description=self.description or None,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            max_age=0,  # keep forever
            discard=DiscardPolicy.NEW,  # never drop old events to make room
            deny_delete=self.immutable,
            deny_purge=self.immutable,
            allow_direct=True,
            allow_atomic=True,
            duplicate_window=120,
        )


async def ensure_stream(nc: NATS, spec: StreamSpec, *, create: bool, timeout: float) -> None:
    """Create the stream if it is missing (when `create`), else check it fits."""
    js = nc.jetstream(timeout=timeout)
    try:
        info = await js.stream_info(spec.name)
    except nats.js.errors.NotFoundError:
        if not create:
            raise OperationalError(
                f"stream {spec.name} does not exist (and creating it is switched off)"
            ) from None
        try:
            await js.add_stream(spec.config())
        except nats.js.errors.BadRequestError as e:
            raise ProgrammingError(f"cannot create stream {spec.name}: {e.description}") from e
        return
    except nats.errors.NoRespondersError:
        raise OperationalError("JetStream is not enabled on this NATS server") from None
    _check_fits(spec, info.config)


def _check_fits(spec: StreamSpec, found: StreamConfig) -> None:
    problems = []
    if not found.allow_atomic:
        problems.append("allow_atomic is off")
    if not found.allow_direct:
        problems.append("allow_direct is off")
    missing = set(spec.subjects) - set(found.subjects or [])
    if missing:
        problems.append(f"subjects {sorted(missing)} are missing")
    if spec.immutable and not (found.deny_delete and found.deny_purge):
        problems.append("it allows deletes or purges")
    if spec.immutable and found.max_age:
        problems.append(f"it has a max age ({found.max_age}s)")
    if problems:
        raise ProgrammingError(
            f"stream {spec.name} exists but cannot hold the event store: " + "; ".join(problems)
        )
