"""One real `buurtbeeld up` for a whole test module, with organisations and tokens of its own.

Partners use it exactly as CONTRACT.md says: signals and commands with plain
nats-py, the picture over HTTP with a bearer token (httpx) or NATS request/reply.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from services.embedded_nats import free_port
from services.registries import token_sha256
from tests.integration.buurtbeeld_process import CONFIGURATION_PREFIXES, BuurtbeeldUp
from tests.integration.partner_support import Partner

BUURT = "BU0363FF03"
OTHER_BUURT = "BU0363FG01"
# id, kind, buurten (None: everywhere)
ORGANISATIONS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("woonzorg", "woningcorporatie", None),
    ("stadgenoot", "woningcorporatie", None),
    ("wijkteam-nieuw-west", "wijkteam", (BUURT,)),
    ("buurtwerk-osdorp", "welzijn", (OTHER_BUURT,)),
    ("bewonersportaal", "bewoners", None),
)
PATIENCE = 60.0


def token_of(organisation: str) -> str:
    return f"test-token-of-{organisation}"


def organisations_toml() -> str:
    blocks = []
    for organisation, kind, buurten in ORGANISATIONS:
        block = (
            f'[[organisation]]\nid = "{organisation}"\nkind = "{kind}"\n'
            f'name = "{organisation.title()}"\n'
            f'token_sha256 = "{token_sha256(token_of(organisation))}"\n'
        )
        if buurten is not None:
            block += f"buurten = {json.dumps(list(buurten))}\n"
        blocks.append(block)
    return "\n".join(blocks)


@dataclass
class System:
    """A running `buurtbeeld up`: where its NATS and HTTP are."""

    up: BuurtbeeldUp
    nats_url: str
    http_url: str
    ready: dict[str, Any]

    def http(self, organisation: str | None = None) -> httpx.Client:
        """An HTTP client for `organisation` (its bearer token), or without a token."""
        headers = (
            {} if organisation is None else {"Authorization": f"Bearer {token_of(organisation)}"}
        )
        return httpx.Client(base_url=self.http_url, headers=headers, timeout=30)

    def get(self, organisation: str | None, path: str, **params: Any) -> httpx.Response:
        with self.http(organisation) as client:
            return client.get(path, params={k: v for k, v in params.items() if v is not None})

    def post(
        self, organisation: str, path: str, body: dict[str, Any] | bytes | None = None
    ) -> httpx.Response:
        with self.http(organisation) as client:
            if isinstance(body, bytes):
                return client.post(path, content=body)
            return client.post(path, json=body) if body is not None else client.post(path)

    def as_partner(self, work: Callable[[Partner], Any]) -> Any:
        """Run `await work(partner)` with a plain nats-py connection."""

        async def connected() -> Any:
            nc = await nats.connect(self.nats_url)
            try:
                return await work(Partner(nc))
            finally:
                await nc.close()

        return asyncio.run(connected())

    def publish(self, organisation: str, **fields: Any) -> None:
        """Publish one signal as CONTRACT.md says, and wait until intake has processed it."""
        body = {"observedAt": datetime.now(UTC).isoformat(), "buurt": BUURT, **fields}

        async def work(partner: Partner) -> None:
            await partner.signal(organisation, body)
            await partner.processed()

        self.as_partner(work)

    def issue_with(self, reader: str, summary: str, buurt: str = BUURT) -> dict[str, Any]:
        """The issue whose summary `reader` sees as `summary`, once the picture has it."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            picture = self.get(reader, f"/api/v1/buurten/{buurt}/issues", status="all").json()
            for issue in picture["issues"]:
                if issue.get("summary") == summary:
                    return dict(issue)
            time.sleep(0.05)
        raise AssertionError(f"no issue {summary!r} in the picture within {PATIENCE}s")

    def issue_at_version(self, reader: str, issue_id: str, version: int) -> dict[str, Any]:
        """The issue once the picture reflects `version` of it."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            answer = self.get(reader, f"/api/v1/issues/{issue_id}")
            if answer.status_code == 200 and answer.json()["version"] >= version:
                return dict(answer.json())
            time.sleep(0.05)
        raise AssertionError(f"{issue_id} not at version {version} within {PATIENCE}s")


def start_system(data_dir: Path) -> Iterator[System]:
    """Start `buurtbeeld up` on `data_dir` with the test organisations; stop it after."""
    organisations = data_dir / "organisations.toml"
    data_dir.mkdir(parents=True, exist_ok=True)
    organisations.write_text(organisations_toml())
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIGURATION_PREFIXES)}
    http_port = free_port()
    env.update(
        BUURTBEELD_DATA=str(data_dir / "data"),
        BUURTBEELD_NATS_PORT=str(free_port()),
        BUURTBEELD_HTTP_PORT=str(http_port),
        BUURTBEELD_ORGANISATIONS=str(organisations),
        BUURTBEELD_LOG_FORMAT="json",
    )
    up = BuurtbeeldUp(env)
    try:
        ready = up.wait_for("buurtbeeld.ready")
        assert ready["http_url"] == f"http://127.0.0.1:{http_port}"
        yield System(up=up, nats_url=ready["nats_url"], http_url=ready["http_url"], ready=ready)
        assert up.stop(signal.SIGTERM) == 0
    finally:
        up.clean_up()


def moment(offset: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + offset).isoformat()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    yield from start_system(tmp_path_factory.mktemp("buurtbeeld"))
