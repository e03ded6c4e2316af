"""The escalation scheduler: every so often, escalate what is overdue.

It keeps no state of its own: what was escalated is in the event log, and an
issue refuses a second escalation, so a restart simply carries on.
"""

from __future__ import annotations

from datetime import timedelta

import anyio
import anyio.to_thread
import structlog

from services.coordination.application import Coordination

log = structlog.get_logger(__name__)


async def escalate_periodically(coordination: Coordination, interval: timedelta) -> None:
    """Call `escalate_overdue` now and then every `interval`, until cancelled. Never raises."""
    while True:
        await escalate_once(coordination)
        await anyio.sleep(interval.total_seconds())


async def escalate_once(coordination: Coordination) -> list[str]:
    """Escalate the overdue issues; the ids of those escalated (none when it failed)."""
    try:
        escalated = await anyio.to_thread.run_sync(coordination.escalate_overdue)
    except Exception as e:  # the next round tries again
        log.warning("escalation.failed", error=f"{type(e).__name__}: {e}")
        return []
    if escalated:
        log.info("escalation.escalated", issues=len(escalated), issue_ids=escalated[:20])
    return escalated
