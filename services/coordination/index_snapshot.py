"""A snapshot of the open-issue index, so that a restart reads only the log's tail.

The coordination rebuilds its open issues (`OpenIssues`) from the whole event
log when it starts: with a million events, minutes. A snapshot keeps the held
issues and the log position they reflect; a start from it follows the log
from there. It is written when the service stops, after a long rebuild, and
while it runs whenever the log has grown enough (`services.coordination.service`),
to a file beside the other data, atomically (a new file renamed over the old).

The index may be ahead of its position (the service's own saves, applied as
they were made), never behind: following on from it skips what an issue
already holds (`OpenIssues.wants`, by version), so ahead is harmless.

A snapshot names the event at its position (originator and version), so one
of another log (the data directory's NATS store replaced, say) is recognised
and ignored; so is one of another format, or one that cannot be read. Ignored
means the index is rebuilt from the start, as without a snapshot.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec
import structlog

from services.coordination.held_issue import HeldIssue

log = structlog.get_logger(__name__)

# Raised whenever `HeldIssue` or this layout changes: older snapshots are then ignored.
FORMAT = 1


class IndexSnapshot(msgspec.Struct, array_like=True, frozen=True):
    """The open issues as they were when the log had been followed to `position`."""

    format: int
    position: int
    # The event stored at `position`: (originator id, originator version).
    at_position: tuple[str, int]
    issues: list[HeldIssue]


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(IndexSnapshot).decode


class IndexSnapshots:
    """Snapshots of the open-issue index in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> IndexSnapshot | None:
        """The snapshot, if there is one of this format that can be read."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("coordination.snapshot_unreadable", path=str(self.path), error=repr(e))
            return None
        try:
            snapshot = _decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as e:
            log.warning("coordination.snapshot_unreadable", path=str(self.path), error=repr(e))
            return None
        if snapshot.format != FORMAT:
            log.info("coordination.snapshot_other_format", format=snapshot.format, ours=FORMAT)
            return None
        return snapshot

    def save(self, snapshot: IndexSnapshot) -> None:
        """Write `snapshot` in place of the one before, whole or not at all."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            with partial.open("wb") as out:
                out.write(_encode(snapshot))
                out.flush()
                os.fsync(out.fileno())
            partial.replace(self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
