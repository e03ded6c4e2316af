"""`buurtbeeld up` with its views in PostgreSQL (BUURTBEELD_VIEWS_URL), as an operator runs it.

The demo is seeded, the picture is answered over HTTP from PostgreSQL, a
restart carries on from the committed position, and a rebuild switches the
running system over to fresh views.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from uuid import uuid4

import httpx
import nats
import psycopg
import pytest

from events.jetstream.wire import direct_get_last
from services.demo import DEMO_BUURT
from tests.integration.buurtbeeld_process import REPO_ROOT, BuurtbeeldUp

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def views_url() -> Iterator[str]:
    """A database of its own, so that nothing else's tables meet ours."""
    name = f"bb_views_{uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
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


def test_the_picture_lives_in_postgresql_survives_a_restart_and_a_rebuild(
    up_env: dict[str, str],
    start_up: Callable[[dict[str, str]], BuurtbeeldUp],
    views_url: str,
) -> None:
    env = {**up_env, "BUURTBEELD_VIEWS_URL": views_url}
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
    with psycopg.connect(views_url) as connection:
        [(position,)] = connection.execute(
            "SELECT position FROM picture_generations WHERE state = 'live'"
        ).fetchall()
        [(rows,)] = connection.execute("SELECT count(*) FROM picture_issues_1").fetchall()
    assert position is not None and rows == 6

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
