"""The projection service: the live picture, kept current beside `buurtbeeld up`.

`projection_service` is an async context manager, as every component of the
composition root: entering it opens the view store, and starts the runner
following the event log (catching up first, in the background: queries answer
meanwhile from what is committed); leaving it stops the runner after its last
commit and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread
import structlog

from projections.answers import BuurtAnswers
from projections.changes import PictureChanges
from projections.feeds import Feed
from projections.queries import PictureQueries
from projections.runner import ProjectionRunner
from projections.store import ViewStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Projections:
    """What the edges (HTTP, NATS queries, dashboard) use."""

    queries: PictureQueries
    changes: PictureChanges
    runner: ProjectionRunner
    store: ViewStore
    # A buurt's live picture, encoded: one for every edge, so the kept buurten are kept once.
    answers: BuurtAnswers


@asynccontextmanager
async def projection_service(
    *, store: ViewStore, feed: Feed, queries: PictureQueries
) -> AsyncIterator[Projections]:
    """Follow `feed` into `store` until the context is left."""
    generation = await anyio.to_thread.run_sync(store.prepare)
    left = await anyio.to_thread.run_sync(store.abandon_unfinished)
    if left:
        log.warning("projection.abandoned_unfinished_rebuilds", generations=left)
    changes = PictureChanges()
    changes.position = await anyio.to_thread.run_sync(store.position, generation)
    runner = ProjectionRunner(store, feed, on_commit=changes.publish)
    stop = asyncio.Event()
    following = asyncio.create_task(runner.follow(stop), name="projection-runner")
    log.info("projection.started", generation=generation, position=changes.position)
    try:
        yield Projections(
            queries=queries,
            changes=changes,
            runner=runner,
            store=store,
            answers=BuurtAnswers(queries, changes),
        )
    finally:
        stop.set()
        try:
            await asyncio.wait_for(following, timeout=10)
        except (TimeoutError, asyncio.CancelledError):
            following.cancel()
        except Exception as e:  # the runner's failure must not hide why we stop
            log.error("projection.failed", error=repr(e))
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(store.close)
        log.info("projection.stopped", position=changes.position)
