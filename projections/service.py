"""The projection service: the live picture, kept current beside `buurtbeeld up`.

`projection_service` is an async context manager, as every component of the
composition root: entering it opens the view store, and starts the runner
following the event log on a thread of its own (catching up first, in the
background: queries answer meanwhile from what is committed); its commits are
announced on this loop (`PictureChanges`); leaving it stops the runner after
its last commit and closes the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread
import structlog

from projections.answers import BuurtAnswers
from projections.changes import PictureChanges
from projections.following import FollowingThread, OpenFeed
from projections.queries import PictureQueries
from projections.store import ViewStore

log = structlog.get_logger(__name__)

# Seconds a stop waits for the commit under way to land.
STOP_WITHIN = 10.0


@dataclass(frozen=True)
class Projections:
    """What the edges (HTTP, NATS queries, dashboard) use."""

    queries: PictureQueries
    changes: PictureChanges
    store: ViewStore
    # A buurt's live picture, encoded: one for every edge, so the kept buurten are kept once.
    answers: BuurtAnswers


@asynccontextmanager
async def projection_service(
    *, store: ViewStore, open_feed: OpenFeed, queries: PictureQueries
) -> AsyncIterator[Projections]:
    """Follow the feed `open_feed` opens into `store`, on a thread of its own
    (`projections.following`), until the context is left."""
    generation = await anyio.to_thread.run_sync(store.prepare)
    left = await anyio.to_thread.run_sync(store.abandon_unfinished)
    if left:
        log.warning("projection.abandoned_unfinished_rebuilds", generations=left)
    changes = PictureChanges()
    changes.position = await anyio.to_thread.run_sync(store.position, generation)
    following = FollowingThread(store, open_feed, changes.publish)
    await following.start()
    log.info("projection.started", generation=generation, position=changes.position)
    try:
        yield Projections(
            queries=queries,
            changes=changes,
            store=store,
            answers=BuurtAnswers(queries, changes),
        )
    finally:
        await following.stop(STOP_WITHIN)
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(store.close)
        log.info("projection.stopped", position=changes.position)
