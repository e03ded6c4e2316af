"""The HTTP API's cache of encoded live pictures: never older than the last commit."""

from __future__ import annotations

import time

from projections.changes import PictureChanges
from projections.runner import Committed
from services.http.picture_cache import PictureCache


def commit(changes: PictureChanges, position: int) -> None:
    changes.publish(Committed(generation=1, position=position, rows=[]))


def test_an_answer_is_served_again_until_the_next_commit() -> None:
    changes = PictureChanges()
    commit(changes, 7)
    cache = PictureCache(changes)

    # Read at position 7, the picture is still at 7: served from the cache.
    cache.put(("woonzorg", "BU0363FF03"), 7, b"picture at 7")
    assert cache.get(("woonzorg", "BU0363FF03")) == b"picture at 7"
    # Per reader: another organisation's answer is not this one.
    assert cache.get(("stadgenoot", "BU0363FF03")) is None

    # A commit: the answer is stale, and gone.
    commit(changes, 8)
    assert cache.get(("woonzorg", "BU0363FF03")) is None


def test_an_answer_read_at_another_position_than_the_latest_is_not_kept() -> None:
    changes = PictureChanges()
    commit(changes, 8)
    cache = PictureCache(changes)

    # Read just before the commit of 8 was announced, or of an empty log: not kept.
    cache.put("question", 7, b"picture at 7")
    cache.put("other", None, b"empty picture")
    assert cache.get("question") is None and cache.get("other") is None


def test_answers_age_out_and_only_so_many_are_kept() -> None:
    changes = PictureChanges()
    commit(changes, 1)
    cache = PictureCache(changes, max_age=0.05, max_entries=2)

    cache.put("a", 1, b"a")
    cache.put("b", 1, b"b")
    cache.put("c", 1, b"c")
    # The oldest made way.
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, b"b", b"c")

    # After max_age, even without a commit, an answer is read afresh.
    time.sleep(0.06)
    assert cache.get("b") is None
