"""The INTAKE stream: what partners sent, as they sent it, for a bounded time.

Partners publish signals on `intake.<org>.signals` with a `Nats-Msg-Id` of
`<org>/<signalRef>`, one by one or many in one atomic batch. JetStream drops
a repeat within the duplicate window; a repeat after that is recognised
later, by the intake service. Signals carry personal data, so the stream
forgets messages after `BUURTBEELD_INTAKE_MAX_AGE`.
"""

from __future__ import annotations

from datetime import timedelta

from nats.aio.client import Client as NATS
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from services.settings import Settings

INTAKE_STREAM = "INTAKE"
INTAKE_SUBJECTS = ("intake.*.signals",)
INTAKE_DUPLICATE_WINDOW = timedelta(minutes=2)


def intake_stream_config(settings: Settings) -> StreamConfig:
    """The INTAKE stream as `settings` want it."""
    return StreamConfig(
        name=INTAKE_STREAM,
        description="Signals as partners sent them; kept for a bounded time (personal data).",
        subjects=list(INTAKE_SUBJECTS),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.nats_replicas,
        max_age=settings.intake_max_age.total_seconds(),
        duplicate_window=INTAKE_DUPLICATE_WINDOW.total_seconds(),
        # When limits are hit, the oldest signals go: partners must never be refused.
        discard=DiscardPolicy.OLD,
        # Partners may publish many signals as one atomic batch (ADR-50): one
        # sync for all of them. Each keeps its Nats-Msg-Id; a batch holding a
        # repeat is refused whole, and its signals are then sent one by one.
        allow_atomic=True,
    )


async def ensure_intake_stream(nc: NATS, settings: Settings) -> StreamInfo:
    """Create the INTAKE stream, or bring an existing one to the configured settings.

    Safe to call on every start and from several processes at once. Messages
    already stored are kept (a shorter max age does drop the older ones).
    """
    jsm = nc.jsm(timeout=settings.nats_timeout)
    config = intake_stream_config(settings)
    try:
        await jsm.stream_info(INTAKE_STREAM)
    except NotFoundError:
        # Creating is idempotent: a concurrent create with the same config succeeds too.
        return await jsm.add_stream(config)
    return await jsm.update_stream(config)
