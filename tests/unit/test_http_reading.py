"""What the edges read from a request before asking: `asOf`, the bearer token, a command body."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.coordination.refusals import InvalidCommand
from services.http.api import command_body
from services.http.auth import bearer_token
from services.queries import as_of_moment

ISSUE = "BU0363FF03.issue.01JD7K3M2X"


def test_as_of_is_an_iso_moment_with_an_offset() -> None:
    moment = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    assert as_of_moment("2026-11-20T08:30:00Z") == moment
    assert as_of_moment("2026-11-20T09:30:00+01:00") == moment
    # A `+` sent unencoded in a query string arrives as a space.
    assert as_of_moment("2026-11-20T09:30:00 01:00") == moment
    # In UTC, as every time the API answers.
    assert as_of_moment("2026-11-20T09:30:00+01:00").utcoffset() == timedelta(0)
    assert as_of_moment(None) is None and as_of_moment("  ") is None

    for bad in ("2026-11-20T09:30:00", "gisteren", "2026-13-01T00:00:00Z"):
        with pytest.raises(InvalidCommand):
            as_of_moment(bad)


def test_only_a_bearer_token_counts() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token("") is None and bearer_token(None) is None


def test_a_command_body_gets_the_issue_of_the_path() -> None:
    assert json.loads(command_body(ISSUE, b"")) == {"issueId": ISSUE}
    assert json.loads(command_body(ISSUE, b'{"to": "woonzorg"}')) == {
        "to": "woonzorg",
        "issueId": ISSUE,
    }
    assert json.loads(command_body(ISSUE, json.dumps({"issueId": ISSUE}).encode())) == {
        "issueId": ISSUE
    }
    for bad in (b'{"issueId": "BU0363FF03.issue.other"}', b"[]", b"{not json", b"\xff"):
        with pytest.raises(InvalidCommand):
            command_body(ISSUE, bad)


def test_offsets_other_than_utc_stay_the_same_moment() -> None:
    amsterdam = timezone(timedelta(hours=1))
    moment = datetime(2026, 11, 20, 9, 30, tzinfo=amsterdam)
    assert as_of_moment(moment.isoformat()) == moment.astimezone(UTC)
