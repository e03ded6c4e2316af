"""Kept answers (`RecentAnswers`): given again only from the same selection, and only briefly.

A selection is what one reader sees of one state of a buurt (`projections.answers`);
a change in the buurt, or another reader, is another selection, so its answer
must be written afresh.
"""

from __future__ import annotations

import gzip
import time

from projections.answers import GZIP_AFTER, RecentAnswers, Selection


def selection() -> Selection:
    return Selection(views=[], rest=b'],"counts":{"byStatus":{},"byCategory":{}},"mine":[]')


def test_an_answer_is_given_again_only_for_the_selection_it_was_written_from() -> None:
    recent = RecentAnswers()
    woonzorg, stadgenoot = selection(), selection()
    recent.put("question", woonzorg, b'{"answer":"woonzorg\'s","position":')
    at_7 = recent.get("question", woonzorg, 7)
    assert at_7 == b'{"answer":"woonzorg\'s","position":7}'
    # At the same position, the same bytes; at a later one (a commit elsewhere), finished anew.
    assert recent.get("question", woonzorg, 7) is at_7
    assert recent.get("question", woonzorg, 9) == b'{"answer":"woonzorg\'s","position":9}'

    # Asked with another selection (the buurt changed, or it is another reader's): not given.
    assert recent.get("question", stadgenoot, 9) is None
    # And gone: the selection it was written from will not come back.
    assert recent.get("question", woonzorg, 9) is None
    assert recent.size == 0


def test_answers_age_out_and_only_so_many_bytes_are_kept() -> None:
    recent = RecentAnswers(max_age=0.05, budget_bytes=10)
    a, b, c = selection(), selection(), selection()
    recent.put("a", a, b"aaaa")
    recent.put("b", b, b"bbbb")
    recent.put("c", c, b"cccc")
    # The oldest made way.
    assert recent.get("a", a, 1) is None
    assert recent.size == 8
    assert (recent.get("b", b, 1), recent.get("c", c, 1)) == (b"bbbb1}", b"cccc1}")

    # After max_age, even from the same selection, an answer is written afresh.
    time.sleep(0.06)
    assert recent.get("b", b, 1) is None
    assert recent.size == len(b"cccc") + len(b"cccc1}")


def test_a_kept_answer_asked_in_gzip_is_compressed_once_and_finished_at_each_position() -> None:
    recent = RecentAnswers(gzip_after=1)
    woonzorg, stadgenoot = selection(), selection()
    written = b'{"answer":"woonzorg\'s","issues":[' + b'{"status":"open"},' * 200 + b'],"position":'
    # Nothing kept, nothing in gzip: the asker writes the answer (and keeps it).
    assert recent.get_gzipped("question", woonzorg, 7) is None
    recent.put("question", woonzorg, written)
    assert recent.size == len(written)

    # Asked again in gzip: the same answer, compressed, and the same bytes again.
    at_7 = recent.get_gzipped("question", woonzorg, 7)
    assert at_7 is not None and gzip.decompress(at_7) == written + b"7}"
    assert recent.get_gzipped("question", woonzorg, 7) is at_7
    at_9 = recent.get_gzipped("question", woonzorg, 9)
    assert at_9 is not None and gzip.decompress(at_9) == written + b"9}"
    # As JSON too, beside it; the budget counts both, and the compressed start.
    assert recent.get("question", woonzorg, 9) == written + b"9}"
    assert len(written) * 2 + len(at_9) < recent.size < len(written) * 2 + len(at_9) * 2

    # Another selection: neither way.
    assert recent.get_gzipped("question", stadgenoot, 9) is None
    assert recent.get("question", woonzorg, 9) is None
    assert recent.size == 0


def test_gzip_counts_against_the_budget() -> None:
    recent = RecentAnswers(budget_bytes=320, gzip_after=1)
    a, b = selection(), selection()
    recent.put("a", a, b"a" * 100)
    recent.put("b", b, b"b" * 100)
    assert recent.get("a", a, 1) == b"a" * 100 + b"1}"
    assert recent.size == 100 + 102 + 100
    # Compressing b's (its start, and finished) goes over: a, the oldest, makes way.
    b_gzipped = recent.get_gzipped("b", b, 1)
    assert b_gzipped is not None and gzip.decompress(b_gzipped) == b"b" * 100 + b"1}"
    assert recent.get("a", a, 1) is None
    assert recent.get("b", b, 1) == b"b" * 100 + b"1}"
    assert 100 + 102 + len(b_gzipped) < recent.size <= 320


def test_an_answer_is_compressed_only_once_it_was_given_so_many_times() -> None:
    recent = RecentAnswers(gzip_after=3)
    answer = selection()
    recent.put("question", answer, b'{"position":')  # written and given: once
    assert recent.get_gzipped("question", answer, 1) is None
    assert recent.get("question", answer, 1) == b'{"position":1}'  # twice
    assert recent.get_gzipped("question", answer, 1) is None
    assert recent.get("question", answer, 2) == b'{"position":2}'  # three times
    in_gzip = recent.get_gzipped("question", answer, 2)
    assert in_gzip is not None and gzip.decompress(in_gzip) == b'{"position":2}'
    # The default: a buurt changing before its answer was given 32 times is never compressed.
    assert RecentAnswers().gzip_after == GZIP_AFTER == 32
