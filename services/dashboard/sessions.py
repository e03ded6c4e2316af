"""Dashboard log-in sessions, kept on the server.

The browser holds only a random session id (an HttpOnly, SameSite=Strict
cookie); the organisation, the form token against cross-site requests and the
one-time messages stay here. Sessions end on log-out, after a while unused,
and when the process stops (the token logs in again). One process serves the
dashboard, so memory is the right place.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "buurtbeeld_sessie"
IDLE_TIMEOUT = 8 * 3600.0
MOST_SESSIONS = 10_000


@dataclass(frozen=True)
class Notice:
    """A one-time message for the next page: `kind` is "ok" or "fout"."""

    kind: str
    text: str
    detail: str | None = None


@dataclass
class Session:
    id: str
    organisation_id: str
    form_token: str
    last_seen: float
    notices: list[Notice] = field(default_factory=list)

    def accepts_form_token(self, token: str | None) -> bool:
        """True when a form sent `token`, the one this session's pages carry."""
        return token is not None and hmac.compare_digest(token, self.form_token)

    def take_notices(self) -> list[Notice]:
        notices, self.notices = self.notices, []
        return notices


class Sessions:
    """The live sessions by id, the least recently used first."""

    def __init__(
        self,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        most: int = MOST_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.most = most
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def start(self, organisation_id: str) -> Session:
        """A new session for `organisation_id`; the oldest goes when there are too many."""
        while len(self._sessions) >= self.most:
            self._sessions.popitem(last=False)
        session = Session(
            id=secrets.token_urlsafe(32),
            organisation_id=organisation_id,
            form_token=secrets.token_urlsafe(32),
            last_seen=self.clock(),
        )
        self._sessions[session.id] = session
        return session

    def find(self, session_id: str | None) -> Session | None:
        """The session with this id, if it is still live; using it keeps it live."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > self.idle_timeout:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)
