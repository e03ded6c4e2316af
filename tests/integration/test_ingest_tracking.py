"""Intake's tracked position after a crash between saving a batch and acking it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

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


class CountedJetStream:
    """nats-py's JetStream context, counting how often the consumer's state is asked."""

    def __init__(self, js: Any) -> None:
        self.js = js
        self.asked = 0

    async def consumer_info(self, *args: Any, **kwargs: Any) -> Any:
        self.asked += 1
        return await self.js.consumer_info(*args, **kwargs)


def test_batches_that_follow_on_what_is_acknowledged_move_the_position_without_asking(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async def story(partner: Partner) -> None:
        subscription = await ten_signals_on_intake(partner)
        app = await coordination_on(tmp_path, nats_server.url)
        try:
            intake = IntakeConsumer(app, partner.nc.publish)
            js = CountedJetStream(partner.js)

            # The first batch: the consumer is asked what else is outstanding
            await intake.receive(await subscription.fetch(3, timeout=10), js)  # type: ignore[arg-type]
            assert (js.asked, app.recorder.max_tracking_id(TRACKING_NAME)) == (1, 3)

            # The next ones follow right on it, in delivery order: nothing to ask
            await intake.receive(await subscription.fetch(3, timeout=10), js)  # type: ignore[arg-type]
            await intake.receive(await subscription.fetch(4, timeout=10), js)  # type: ignore[arg-type]
            assert (js.asked, app.recorder.max_tracking_id(TRACKING_NAME)) == (1, 10)
            info = await partner.js.consumer_info(INTAKE_STREAM, INTAKE_CONSUMER)
            assert info.num_ack_pending == 0 and len(app.open_issues) == 10
        finally:
            await asyncio.to_thread(app.close)

    as_partner(nats_server, tmp_path, story)


def test_after_a_batch_left_outstanding_the_consumer_is_asked_again(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async def story(partner: Partner) -> None:
        subscription = await ten_signals_on_intake(partner)
        app = await coordination_on(tmp_path, nats_server.url)
        try:
            intake = IntakeConsumer(app, partner.nc.publish)
            js = CountedJetStream(partner.js)
            await intake.receive(await subscription.fetch(2, timeout=10), js)  # type: ignore[arg-type]

            # A batch fetched but not handed to intake (a crash, say) stays outstanding
            held = await subscription.fetch(3, timeout=10)

            # The batch after it does not follow on what is acknowledged: asked, and
            # the position stays below the outstanding one
            await intake.receive(await subscription.fetch(5, timeout=10), js)  # type: ignore[arg-type]
            assert (js.asked, app.recorder.max_tracking_id(TRACKING_NAME)) == (2, 2)

            # Once it is done, everything is
            await intake.receive(held, js)  # type: ignore[arg-type]
            assert app.recorder.max_tracking_id(TRACKING_NAME) == 10
            assert len(app.open_issues) == 10
        finally:
            await asyncio.to_thread(app.close)

    as_partner(nats_server, tmp_path, story)
