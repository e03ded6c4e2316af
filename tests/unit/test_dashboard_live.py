"""Live pages: which commits concern a page, and waiting for the next one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from projections.picture import IssueRow
from projections.runner import Committed
from services.dashboard.live import next_change, touched

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def row(issue_id: str, buurt: str) -> IssueRow:
    return IssueRow(
        id=issue_id,
        buurt=buurt,
        category="grof-vuil",
        sensitivity="open",
        status="unowned",
        opened_at=NOW,
        opened_by="woonzorg",
        updated_at=NOW,
    )


def commit(position: int, *rows: IssueRow) -> Committed:
    return Committed(generation=1, position=position, rows=rows)


def in_geuzenveld(issue: IssueRow) -> bool:
    return issue.buurt == "BU0363FD02"


def test_only_the_rows_of_the_page_count() -> None:
    batch: list[Committed | None] = [
        commit(1, row("a", "BU0363FD02"), row("b", "BU0363FF03")),
        commit(2, row("c", "BU0363FD02")),
    ]
    assert touched(batch, in_geuzenveld) == {"a", "c"}
    # Commits elsewhere only: nothing to render again.
    assert touched([commit(3, row("b", "BU0363FF03"))], in_geuzenveld) == set()


def test_dropped_commits_mean_render_everything_again() -> None:
    assert touched([commit(1, row("b", "BU0363FF03")), None], in_geuzenveld) is None


def test_waiting_for_the_next_change_until_it_comes_the_time_is_up_or_the_server_stops() -> None:
    async def story() -> None:
        queue: asyncio.Queue[Committed | None] = asyncio.Queue()
        stopping = asyncio.Event()
        # A commit waiting is the answer at once.
        seventh = commit(7)
        queue.put_nowait(seventh)
        assert (await next_change(queue, stopping, 1.0)) is seventh
        # None: some were dropped.
        queue.put_nowait(None)
        assert await next_change(queue, stopping, 1.0) is None
        # Nothing within the time: a keep-alive is due.
        with pytest.raises(TimeoutError):
            await next_change(queue, stopping, 0.01)
        # The server stops while we wait: the stream ends.
        asyncio.get_running_loop().call_later(0.01, stopping.set)
        with pytest.raises(StopAsyncIteration):
            await next_change(queue, stopping, 5.0)
        # And stays ended, even with commits waiting.
        queue.put_nowait(commit(8))
        with pytest.raises(StopAsyncIteration):
            await next_change(queue, stopping, 5.0)

    asyncio.run(story())
