"""End to end: a real `buurtbeeld up`, used by partners exactly as CONTRACT.md says.

No demo data: the organisations file is the deployment's own, written here.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path

import nats

from services.registries import token_sha256
from tests.integration.buurtbeeld_process import BuurtbeeldUp
from tests.integration.partner_support import Partner
from tests.unit.test_contract import CONTRACT_EXAMPLE

ORGANISATIONS = """
[[organisation]]
id = "woonzorg"
kind = "woningcorporatie"
name = "Woonzorg Nederland"
token_sha256 = "{woonzorg}"

[[organisation]]
id = "wijkteam-nieuw-west"
kind = "wijkteam"
name = "Wijkteam Nieuw-West"
token_sha256 = "{wijkteam}"
buurten = ["BU0363FF03"]
"""


def test_a_partner_signal_becomes_an_issue_that_can_be_claimed(
    up_env: dict[str, str], start_up: Callable[[dict[str, str]], BuurtbeeldUp], tmp_path: Path
) -> None:
    organisations = tmp_path / "organisations.toml"
    organisations.write_text(
        ORGANISATIONS.format(
            woonzorg=token_sha256("woonzorg-token"), wijkteam=token_sha256("wijkteam-token")
        )
    )
    up = start_up({**up_env, "BUURTBEELD_ORGANISATIONS": str(organisations)})
    up.wait_for("buurtbeeld.ready")
    # Where partners find the embedded server: the file `buurtbeeld up` writes.
    url = Path(up_env["BUURTBEELD_DATA"], "nats.url").read_text().strip()

    async def as_partner() -> None:
        nc = await nats.connect(url)
        try:
            partner = Partner(nc)
            await partner.listen_for_rejections()

            # Woonzorg publishes the contract's example signal, and a broken one.
            await partner.signal("woonzorg", json.loads(CONTRACT_EXAMPLE))
            await partner.publish("woonzorg", b"{not json", "woonzorg/broken")
            await partner.processed()

            # The issue is on events.<buurt>.>, as the contract's JSON.
            [(subject, opened)] = await partner.events("events.BU0363FF03.>")
            assert subject == f"events.{opened['issueId']}"
            assert opened["type"] == "IssueOpened"
            assert opened["signal"]["signalRef"] == "wz-2026-000123"
            [rejected] = await partner.rejected("woonzorg", 1)
            assert rejected["signalRef"] is None and rejected["reasons"]

            # The wijkteam claims it.
            reply = await partner.request(
                "wijkteam-nieuw-west", "claim", {"issueId": opened["issueId"]}
            )
            assert reply == {"ok": True, "issueId": opened["issueId"], "version": 2}
            again = await partner.request("woonzorg", "claim", {"issueId": opened["issueId"]})
            assert (again["ok"], again["code"]) == (False, "already-owned")
        finally:
            await nc.close()

    asyncio.run(as_partner())
    assert up.stop(signal.SIGTERM) == 0

    # Every log line about a message says its subject, stream sequence and organisation.
    [rejection] = [r for r in up.records if r.get("event") == "intake.rejected"]
    assert rejection["subject"] == "intake.woonzorg.signals"
    assert rejection["organisation"] == "woonzorg"
    assert rejection["stream_sequence"] == 2
    batches = [r for r in up.records if r.get("event") == "intake.batch"]
    assert batches and all(
        {"subject", "stream_sequence", "organisation"} <= set(b) for b in batches
    )
    assert "coordination.stopped" in up.events()
