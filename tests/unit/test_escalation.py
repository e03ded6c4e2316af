"""The escalation scheduler, on the in-memory store: it escalates what is overdue, once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.coordination.escalation import escalate_periodically
from tests.unit.test_coordination import Clock, coordination, opened

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def test_the_scheduler_escalates_an_unowned_issue_once_it_is_overdue() -> None:
    clock = Clock()
    with coordination(POPO, clock) as app:
        issue_id = opened(app)  # grof-vuil: two days to find an owner

        async def story() -> None:
            # Not yet overdue: the scheduler runs and nothing happens.
            scheduler = asyncio.create_task(escalate_periodically(app, timedelta(milliseconds=10)))
            await asyncio.sleep(0.05)
            assert app.get_issue(issue_id).status.value == "unowned"

            # Two days on, the next round escalates it.
            clock.advance(days=2)
            for _ in range(3000):  # 30 s at most
                if app.get_issue(issue_id).status.value == "escalated":
                    break
                await asyncio.sleep(0.01)
            scheduler.cancel()
            assert app.get_issue(issue_id).status.value == "escalated"

        asyncio.run(story())

        # Once only: the issue refuses a second escalation until it has been owned again.
        assert [type(e).__name__ for e in app.events.get(issue_id)] == [
            "IssueOpened",
            "IssueEscalated",
        ]
