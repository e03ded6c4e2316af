"""Intake's tracked position after a crash between saving a batch and acking it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.coordination.intake_handler import (
    INTAKE_CONSUMER,
    INTAKE_STREAM,
    TRACKING_NAME,
    IntakeConsumer,
    _deliveries,
)
from services.coordination.intake_reading import read_signal
from services.embedded_nats import EmbeddedNats
from tests.integration.partner_support import Partner
from tests.integration.test_coordination_service import (
    as_partner,
    coordination_on,
    ten_signals_on_intake,
)
from tests.unit.test_coordination import at


def test_a_redelivered_batch_saved_before_the_crash_still_moves_the_position_to_the_end(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # Without the broker: the durable consumer's deliveries handed to intake by hand.
    async def story(partner: Partner) -> None:
        subscription = await ten_signals_on_intake(partner)
        crashed = await subscription.fetch(4, timeout=10)
        app = await coordination_on(tmp_path, nats_server.url)
        try:
            # The crashed run saved its batch with the position, and died before acking.
            pairs = []
            for delivery in _deliveries(crashed):
                read = read_signal(delivery.body)
                pairs.append((delivery.organisation, read))
            await asyncio.to_thread(app.receive, pairs, at(TRACKING_NAME, 4))  # type: ignore[arg-type]

            # Restarted: the rest is processed while that batch is still outstanding,
            # so the position cannot move past it.
            intake = IntakeConsumer(app, partner.nc.publish)
            rest = await subscription.fetch(6, timeout=10)
            await intake.receive(rest, partner.js)
            assert app.recorder.max_tracking_id(TRACKING_NAME) == 4

            # The crashed batch comes again (here at once; after the ack wait in life):
            # nothing in it to do, but now everything is done, up to the end.
            for msg in crashed:
                await msg.nak()
            again = await subscription.fetch(4, timeout=10)
            assert sorted(m.metadata.sequence.stream for m in again) == [1, 2, 3, 4]
            await intake.receive(again, partner.js)
            assert app.recorder.max_tracking_id(TRACKING_NAME) == 10
            info = await partner.js.consumer_info(INTAKE_STREAM, INTAKE_CONSUMER)
            assert info.num_ack_pending == 0
            assert len(app.open_issues) == 10
        finally:
            await asyncio.to_thread(app.close)

    as_partner(nats_server, tmp_path, story)
