"""Kept answers (`RecentAnswers`): given again only from the same selection, and only briefly.

A selection is what one reader sees of one state of a buurt (`projections.answers`);
a change in the buurt, or another reader, is another selection, so its answer
must be written afresh.
"""

from __future__ import annotations

import time

from projections.answers import RecentAnswers, Selection


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
