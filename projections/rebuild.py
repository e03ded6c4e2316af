"""Rebuild: replay the whole event log into fresh views, then switch over.

The live views keep answering while a new generation fills beside them
(`ViewStore.new_generation`). Once it has read the log to its end, it catches
up once more with what arrived meanwhile, and `switch_to` makes it live in one
transaction: readers go from the old picture to the new one, never to half of
one. A running `buurtbeeld up` notices at its next commit and follows the new
generation from its position. A rebuild that fails or is interrupted leaves the
live views as they were (its generation is dropped).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import anyio.to_thread

from projections.feeds import Feed
from projections.runner import Progress, ProjectionRunner
from projections.store import ViewStore


@dataclass(frozen=True)
class Rebuilt:
    generation: int
    replaced: int
    events: int
    applied: int
    position: int | None
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def rebuild(
    store: ViewStore, feed: Feed, on_progress: Callable[[Progress], None] | None = None
) -> Rebuilt:
    """Replay `feed` from the start into a new generation of `store` and make it live."""
    started = time.monotonic()
    await anyio.to_thread.run_sync(store.prepare)
    generation = await anyio.to_thread.run_sync(store.new_generation)
    runner = ProjectionRunner(store, feed)
    try:
        replayed = await runner.run(generation, follow=False, on_progress=on_progress)
        # What was stored while replaying: read once more, then switch.
        caught_up = await runner.run(generation, follow=False)
        replaced = await anyio.to_thread.run_sync(store.switch_to, generation)
    except BaseException:
        await anyio.to_thread.run_sync(store.abandon, generation)
        raise
    return Rebuilt(
        generation=generation,
        replaced=replaced,
        events=replayed.read + caught_up.read,
        applied=replayed.applied + caught_up.applied,
        position=caught_up.position if caught_up.position is not None else replayed.position,
        seconds=time.monotonic() - started,
    )


class ProgressBar:
    """`[#####-----]  52%  520,000/1,000,000 events  118,000 ev/s`; plain lines off a tty."""

    def __init__(self, out: TextIO = sys.stderr, width: int = 30, every: float = 0.2) -> None:
        self.out = out
        self.width = width
        self.every = every
        self.tty = out.isatty()
        self._shown = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._shown < (self.every if self.tty else 2.0):
            return
        self._shown = now
        self.out.write(self.line(progress) + ("\r" if self.tty else "\n"))
        self.out.flush()

    def line(self, progress: Progress) -> str:
        total = progress.read + progress.pending
        share = progress.read / total if total else 1.0
        done = int(share * self.width)
        bar = "#" * done + "-" * (self.width - done)
        return (
            f"[{bar}] {share:4.0%}  {progress.read:,}/{total:,} events  "
            f"{progress.events_per_second:,.0f} ev/s"
        )

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()
