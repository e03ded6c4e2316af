"""The coordination service: the `Coordination` application behind its NATS edge.

`coordination_service` is an async context manager, as every component of the
composition root: entering it rebuilds the application from the event log
(its open issues from the last snapshot on, `index_snapshot`, if there is one),
makes sure of the INTAKE consumer, starts the FastStream broker (commands,
rejections), the intake pull loop (on its own thread, `IntakeThread`) and the
escalation scheduler; leaving it stops them in reverse order, letting the batch
and commands in hand finish, and keeps a snapshot of the open issues.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

import structlog

from services.coordination.application import Coordination
from services.coordination.broker import COMMANDS_HANDLER, GRACEFUL_TIMEOUT, build_broker
from services.coordination.command_handler import CommandHandler
from services.coordination.escalation import escalate_periodically
from services.coordination.index_snapshot import IndexSnapshot, IndexSnapshots
from services.coordination.intake_handler import INTAKE_CONSUMER, INTAKE_STREAM
from services.coordination.intake_pull import ensure_intake_consumer
from services.coordination.intake_thread import IntakeThread
from services.registries import Registries

log = structlog.get_logger(__name__)

# A rebuild that read this many events is worth a snapshot at once, not only at stop;
# so is a log that grew this much while the service ran (after a crash, which keeps
# no snapshot, the next start then reads at most about this many events).
SNAPSHOT_AFTER = 100_000
# How often a running service looks whether the log grew that much.
SNAPSHOT_CHECK_SECONDS = 60.0


@asynccontextmanager
async def coordination_service(
    *,
    nats_url: str,
    eventsourcing_env: Mapping[str, str],
    registries: Registries,
    escalation_interval: timedelta,
    nats_timeout: float = 5.0,
    index_snapshots: IndexSnapshots | None = None,
    snapshot_after: int = SNAPSHOT_AFTER,
    snapshot_check_seconds: float = SNAPSHOT_CHECK_SECONDS,
) -> AsyncIterator[Coordination]:
    """Run the coordination service on NATS at `nats_url` until the context is left.

    `eventsourcing_env` selects and configures the event store. With
    `index_snapshots`, the open issues start from the last snapshot and one is
    kept when the service stops, after a rebuild that read `snapshot_after`
    events or more, and while running, whenever the log has grown by that much
    since the last. Yields the application (for tests and the composition root
    to look at).
    """
    started = time.monotonic()
    coordination = await _in_thread_closing_if_abandoned(
        lambda: Coordination(
            dict(eventsourcing_env),
            organisations=registries.organisations,
            categories=registries.categories,
            buurten=registries.buurten,
            index_snapshots=index_snapshots,
        )
    )
    try:
        log.info(
            "coordination.rebuilt",
            open_issues=len(coordination.open_issues),
            from_snapshot_at=coordination.restored_from,
            events_read=coordination.rebuilt_from_log,
            seconds=round(time.monotonic() - started, 3),
        )
        kept_at = coordination.restored_from or 0
        if coordination.rebuilt_from_log >= snapshot_after:
            kept = await _keep_snapshot(coordination)
            kept_at = kept.position if kept is not None else kept_at
        edge = build_broker(nats_url.split(","), connect_timeout=max(1, round(nats_timeout)))
        edge.broker.context.set_global(COMMANDS_HANDLER, CommandHandler(coordination))
        try:
            js = (await edge.broker.connect()).jetstream(timeout=nats_timeout)
            await ensure_intake_consumer(js, nats_timeout)
            await edge.broker.start()
            intake = IntakeThread(
                nats_url.split(","), coordination, edge.publish_rejection, nats_timeout
            )
            await intake.start()
            escalation = asyncio.create_task(
                escalate_periodically(coordination, escalation_interval)
            )
            snapshots = asyncio.create_task(
                _snapshot_as_the_log_grows(
                    coordination, kept_at, snapshot_after, snapshot_check_seconds
                )
            )
            try:
                log.info(
                    "coordination.started",
                    intake=f"{INTAKE_STREAM}/{INTAKE_CONSUMER}",
                    commands="cmd.*.*",
                    escalation_interval_seconds=escalation_interval.total_seconds(),
                )
                yield coordination
            finally:
                for task in (escalation, snapshots):
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
                await intake.stop(GRACEFUL_TIMEOUT)
        finally:
            await edge.broker.stop()
    finally:
        await _keep_snapshot(coordination)
        await asyncio.to_thread(coordination.close)
        log.info("coordination.stopped")


async def _keep_snapshot(coordination: Coordination) -> IndexSnapshot | None:
    """Keep the open issues for the next start; a failure only costs that start time.
    What was kept, if anything."""
    if coordination.index_snapshots is None:
        return None
    started = time.monotonic()
    try:
        kept = await asyncio.to_thread(coordination.save_snapshot)
    except Exception as e:
        log.warning("coordination.snapshot_failed", error=repr(e))
        return None
    if kept is not None:
        log.info(
            "coordination.snapshot_kept",
            position=kept.position,
            open_issues=len(kept.issues),
            seconds=round(time.monotonic() - started, 3),
        )
    return kept


async def _snapshot_as_the_log_grows(
    coordination: Coordination, kept_at: int, after: int, check_seconds: float
) -> None:
    """Every `check_seconds`, a snapshot if the log grew by `after` events since the one
    kept at position `kept_at`: a crash keeps none, and the next start would otherwise
    read all the log written since the last stop. Until cancelled; never raises."""
    if coordination.index_snapshots is None:
        return
    while True:
        await asyncio.sleep(check_seconds)
        if coordination.followed - kept_at >= after:
            kept = await _keep_snapshot(coordination)
            if kept is not None:
                kept_at = kept.position


async def _in_thread_closing_if_abandoned(
    construct: Callable[[], Coordination],
) -> Coordination:
    """`construct()` in a worker thread; if the caller gives up meanwhile, close what it made."""
    call = asyncio.ensure_future(asyncio.to_thread(construct))
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        await asyncio.wait({call})
        if not call.cancelled() and call.exception() is None:
            call.result().close()
        raise
