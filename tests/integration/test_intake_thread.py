"""Intake on its own thread: it processes what partners send, and stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

from services.coordination.intake_handler import TRACKING_NAME
from services.coordination.intake_thread import IntakeThread
from services.embedded_nats import EmbeddedNats
from tests.integration.partner_support import Partner, until
from tests.integration.test_coordination_service import as_partner, coordination_on, signal


def intake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "intake"]


def test_the_intake_thread_processes_signals_and_rejections_then_stops(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async def story(partner: Partner) -> None:
        app = await coordination_on(tmp_path, nats_server.url)
        rejections: list[tuple[str, bytes]] = []
        loop = asyncio.get_running_loop()

        async def publish(subject: str, body: bytes) -> None:
            # Rejections are sent on the caller's loop, as the service's broker does.
            assert asyncio.get_running_loop() is loop
            rejections.append((subject, body))

        intake = IntakeThread([nats_server.url], app, publish, timeout=10)
        try:
            await intake.start()
            assert len(intake_threads()) == 1

            # A partner's signals: two about one place, and one for an unknown buurt
            await partner.signal("woonzorg", signal("wz-1", place="plek"))
            await partner.signal("stadgenoot", signal("sg-1", place="plek"))
            await partner.signal("woonzorg", signal("wz-2", buurt="BU9999ZZ99"))

            # One issue with both signals, one rejection, everything tracked
            async def done() -> bool:
                tracked = await asyncio.to_thread(app.recorder.max_tracking_id, TRACKING_NAME)
                return tracked == 3 and len(rejections) == 1

            await until(done, "two signals processed, one rejected", within=20)
            (issue,) = list(app.open_issues)
            assert issue.signal_count == 2
            assert rejections[0][0] == "rejected.woonzorg"
        finally:
            await intake.stop(grace=5)
            await asyncio.to_thread(app.close)
        assert intake_threads() == []

    as_partner(nats_server, tmp_path, story)


def test_an_intake_thread_stopped_while_starting_never_pulls(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async def story(partner: Partner) -> None:
        app = await coordination_on(tmp_path, nats_server.url)

        async def publish(subject: str, body: bytes) -> None:
            raise AssertionError("nothing is rejected here")

        intake = IntakeThread([nats_server.url], app, publish, timeout=10)
        starting = asyncio.ensure_future(intake.start())
        await asyncio.sleep(0)
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await partner.signal("woonzorg", signal("wz-1", place="plek"))
        await asyncio.sleep(1)
        try:
            assert intake_threads() == []
            assert len(app.open_issues) == 0
        finally:
            await asyncio.to_thread(app.close)

    as_partner(nats_server, tmp_path, story)
