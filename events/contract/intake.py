"""What partners publish on `intake.<org>.signals`, and what they get back when it is refused."""

from __future__ import annotations

from typing import Annotated

import msgspec

from events.contract.base import BuurtCode, Contract, Moment

CategoryCode = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
]


class Location(Contract, frozen=True, kw_only=True):
    """Where, finer than the buurt. `key` decides which signals are about the same place."""

    key: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    address: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None


class Reporter(Contract, frozen=True, kw_only=True):
    """Who observed it. Personal data: need-to-know, and can be forgotten."""

    role: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    name: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class Signal(Contract, frozen=True, kw_only=True):
    """One observation by one organisation, about one buurt, in one category.

    Header `Nats-Msg-Id: <org>/<signalRef>`; the same id again changes nothing.
    Unknown fields are ignored.
    """

    signal_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    buurt: BuurtCode
    category: CategoryCode
    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    observed_at: Moment
    location: Location | None = None
    reporter: Reporter | None = None
    subject_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class Rejection(Contract, frozen=True, kw_only=True, omit_defaults=False):
    """Published on `rejected.<org>` for a signal that was not accepted."""

    signal_ref: str | None
    reasons: list[str]
