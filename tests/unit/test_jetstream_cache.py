"""The event store's cache: what was read, kept whole; what was only written, not kept."""

from __future__ import annotations

import gc

from eventsourcing.persistence import StoredEvent

from events.jetstream.heads import EventCache, Head, Heads


def stored(version: int) -> StoredEvent:
    return StoredEvent(
        originator_id="BU0363FF03.issue.a", originator_version=version, topic="T", state=b"{}"
    )


def test_a_subject_only_written_is_not_cached() -> None:
    cache = EventCache()
    cache.extend("events.receipts.woonzorg.abc", after=0, sequence=7, events=[stored(1)])
    assert cache.get("events.receipts.woonzorg.abc") is None


def test_a_subject_read_is_cached_and_grows_with_what_is_written_after_it() -> None:
    cache = EventCache()
    cache.put("events.BU0363FF03.issue.a", sequence=5, events=[stored(1)])
    cache.extend("events.BU0363FF03.issue.a", after=5, sequence=9, events=[stored(2)])
    known = cache.get("events.BU0363FF03.issue.a")
    assert known is not None and known.sequence == 9
    assert [e.originator_version for e in known.events] == [1, 2]

    # A write that does not follow what is known (another writer came between): dropped
    cache.extend("events.BU0363FF03.issue.a", after=12, sequence=13, events=[stored(4)])
    assert cache.get("events.BU0363FF03.issue.a") is None


def test_heads_are_plain_tuples_the_collector_stops_tracking() -> None:
    heads = Heads()
    heads.advance("a", Head(5, 1))
    gc.collect()
    assert heads.get("a") == Head(5, 1)
    assert not any(gc.is_tracked(held) for held in heads._heads.values())
