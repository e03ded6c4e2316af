"""Dashboard sessions: started at log-in, live while used, gone after log-out or idling."""

from __future__ import annotations

from services.dashboard.sessions import Notice, Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_found_by_its_id_until_it_ends() -> None:
    sessions = Sessions()
    session = sessions.start("woonzorg")
    # Found by its id, and only by it.
    assert sessions.find(session.id) is session
    assert sessions.find("someone-elses-guess") is None
    assert sessions.find(None) is None
    assert sessions.find("") is None
    # Logging out ends it.
    sessions.end(session.id)
    assert sessions.find(session.id) is None
    sessions.end(session.id)  # twice is harmless


def test_ids_and_form_tokens_are_random_and_distinct() -> None:
    sessions = Sessions()
    first, second = sessions.start("woonzorg"), sessions.start("woonzorg")
    assert len({first.id, second.id, first.form_token, second.form_token}) == 4
    assert len(first.id) >= 40


def test_a_session_idle_too_long_is_gone_one_in_use_stays() -> None:
    clock = Clock()
    sessions = Sessions(idle_timeout=60, clock=clock)
    used, idle = sessions.start("woonzorg"), sessions.start("stadgenoot")
    # One is used every 40 seconds, the other not.
    for _ in range(3):
        clock.now += 40
        assert sessions.find(used.id) is used
    assert sessions.find(idle.id) is None
    assert len(sessions) == 1


def test_too_many_sessions_push_out_the_least_recently_used() -> None:
    sessions = Sessions(most=2)
    oldest, used = sessions.start("woonzorg"), sessions.start("stadgenoot")
    sessions.find(oldest.id)  # now `used` is the least recently used
    sessions.start("eigen-haard")
    assert sessions.find(used.id) is None
    assert sessions.find(oldest.id) is oldest


def test_forms_must_carry_the_sessions_own_token() -> None:
    session = Sessions().start("woonzorg")
    assert session.accepts_form_token(session.form_token)
    assert not session.accepts_form_token(None)
    assert not session.accepts_form_token("")
    assert not session.accepts_form_token(session.id)


def test_notices_are_shown_once() -> None:
    session = Sessions().start("woonzorg")
    session.notices.append(Notice(kind="ok", text="De zaak is opgelost."))
    assert [n.text for n in session.take_notices()] == ["De zaak is opgelost."]
    assert session.take_notices() == []
