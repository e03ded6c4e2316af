"""`buurtbeeld up` with its views in SQLite (the default) or PostgreSQL (BUURTBEELD_VIEWS_URL),
as an operator runs it.

The demo is seeded, the picture is answered over HTTP from the view store, a
rebuild from another process switches the running system over to fresh views,
and a restart carries on from the live generation's committed position.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import nats
import psycopg
import pytest

from events.jetstream.wire import direct_get_last
from services.demo import DEMO_BUURT
from tests.integration.buurtbeeld_process import REPO_ROOT, BuurtbeeldUp

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


LIVE_POSITION = "SELECT position FROM picture_generations WHERE state = 'live'"
FIRST_ROWS = "SELECT count(*) FROM picture_issues_1"


@pytest.fixture(params=["sqlite", "postgresql"])
def views(
    request: pytest.FixtureRequest, up_env: dict[str, str]
) -> Iterator[tuple[dict[str, str], Callable[[str], Any]]]:
    """`up_env` with its view store, and a way to ask that store one value."""
    if request.param == "sqlite":  # views.sqlite in the data folder
        path = Path(up_env["BUURTBEELD_DATA"]) / "views.sqlite"

        def in_sqlite(query: str) -> Any:
            with contextlib.closing(sqlite3.connect(path)) as connection:
                return connection.execute(query).fetchone()[0]

        yield up_env, in_sqlite
        return
    # A PostgreSQL database of its own, so that nothing else's tables meet ours.
    name = f"bb_views_{uuid4().hex[:10]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")

    def in_postgresql(query: str) -> Any:
        with psycopg.connect(url) as connection:
            row = connection.execute(query).fetchone()
            assert row is not None
            return row[0]

    try:
        yield {**up_env, "BUURTBEELD_VIEWS_URL": url}, in_postgresql
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def last_demo_event(nats_url: str) -> int:
    """The stream position of the demo buurt's last issue event."""
    nc = await nats.connect(nats_url)
    try:
        msg = await direct_get_last(nc, "EVENTS", f"events.{DEMO_BUURT}.issue.*", 5)
        assert msg is not None and msg.headers is not None
        return int(msg.headers["Nats-Sequence"])
    finally:
        await nc.close()


def picture(ready: dict[str, str], token: str) -> dict[str, object]:
    answer = httpx.get(
        f"{ready['http_url']}/api/v1/buurten/{DEMO_BUURT}/issues?status=all",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_the_picture_lives_in_its_view_store_survives_a_rebuild_and_a_restart(
    views: tuple[dict[str, str], Callable[[str], Any]],
    start_up: Callable[[dict[str, str]], BuurtbeeldUp],
) -> None:
    env, ask = views
    first = start_up(env)
    ready = first.wait_for("buurtbeeld.ready")
    first.wait_for("demo.seeded")
    token = first.wait_for("demo.log_in")["token"]
    first.wait_for("views.ready")

    last = asyncio.run(last_demo_event(ready["nats_url"]))

    def caught_up() -> bool:
        position = picture(ready, token)["position"]
        return isinstance(position, int) and position >= last

    wait_until(caught_up)
    before = picture(ready, token)
    assert ask(LIVE_POSITION) is not None and ask(FIRST_ROWS) == 6

    # A rebuild from another process, while the system runs: the new views go live.
    rebuilt = subprocess.run(
        [sys.executable, "-m", "services.cli", "projections", "rebuild"],
        cwd=REPO_ROOT,
        env={**env, "NATS_URL": ready["nats_url"]},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    report = json.loads(rebuilt.stdout.strip().splitlines()[-1])
    assert (report["generation"], report["replaced"]) == (2, 1)
    assert "100%" in rebuilt.stderr  # the progress bar got to the end
    after = picture(ready, token)
    assert _without_moments(after) == _without_moments(before)
    assert first.stop(signal.SIGTERM) == 0

    # A restart carries on from the live generation's position: nothing replayed twice.
    second = start_up(env)
    again = second.wait_for("buurtbeeld.ready")
    following = second.wait_for("projection.following")
    assert following["generation"] == 2
    restarted = _without_moments(picture(again, token))
    assert isinstance(restarted, list)
    expected = _without_moments(before)
    assert isinstance(expected, list)
    for now, then in zip(restarted, expected, strict=True):
        assert {k: v for k, v in now.items() if v != then.get(k)} == {}, then


def _without_moments(answer: dict[str, object]) -> object:
    """The picture minus what changes with the clock (ages, the moment asked)."""
    issues = answer["issues"]
    assert isinstance(issues, list)
    return [{k: v for k, v in i.items() if k not in ("ageSeconds",)} for i in issues]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
