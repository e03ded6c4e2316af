"""Reading what a partner published on `intake.<org>.signals`: a `Signal`, or why not.

Nothing here trusts the body: it may be any bytes at all. What cannot be read
as a signal is answered on `rejected.<org>` with the reasons, and with the
`signalRef` when one can be found in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from events.contract import Signal
from events.contract.codec import signal_decoder

# A signal is a few kilobytes at most (its fields are bounded); unknown fields are
# ignored, but not without limit.
MAX_SIGNAL_BYTES = 64 * 1024
MAX_SIGNAL_REF_LENGTH = 64
# Reasons quote the decoder's complaint; partners' input in it is cut short.
MAX_REASON_LENGTH = 300


class _SignalRefOnly(msgspec.Struct, rename="camel"):
    """A body's `signalRef` and nothing else: the rest is skipped, never built."""

    signal_ref: str | None = None


_signal_ref_only = msgspec.json.Decoder(_SignalRefOnly)


@dataclass(frozen=True)
class Unreadable:
    """A body that is not a signal: why, and its `signalRef` if it has a usable one."""

    reasons: tuple[str, ...]
    signal_ref: str | None = None


def organisation_of(subject: str) -> str:
    """The `<org>` of `intake.<org>.signals` (the subscription guarantees the shape)."""
    return subject.split(".")[1]


def read_signal(body: bytes) -> Signal | Unreadable:
    """The signal in `body`, or an `Unreadable` saying what is wrong with it."""
    if len(body) > MAX_SIGNAL_BYTES:
        return Unreadable(
            (f"the body is {len(body)} bytes; a signal is at most {MAX_SIGNAL_BYTES}",)
        )
    try:
        signal: Signal = signal_decoder.decode(body)
    except UnicodeDecodeError:
        return Unreadable(("the body is not valid UTF-8",))
    except RecursionError:
        return Unreadable(("the body is nested too deeply",))
    except msgspec.ValidationError as e:
        return Unreadable((_reason(f"not a valid signal: {e}"),), _salvaged_signal_ref(body))
    except msgspec.DecodeError as e:
        return Unreadable((_reason(f"not valid JSON: {e}"),))
    except Exception as e:  # whatever else the decoder meets in hostile input
        return Unreadable((_reason(f"the body could not be read: {type(e).__name__}"),))
    return signal


def _salvaged_signal_ref(body: bytes) -> str | None:
    """The body's `signalRef`, if it is a JSON object with a well-formed one.

    Only that field is decoded: hostile input (deeply nested, say) is skipped by
    the decoder, not built into Python objects.
    """
    try:
        signal_ref = _signal_ref_only.decode(body).signal_ref
    except Exception:  # not JSON, or hostile in some other way: no signalRef to give
        return None
    if signal_ref is not None and 1 <= len(signal_ref) <= MAX_SIGNAL_REF_LENGTH:
        return signal_ref
    return None


def _reason(text: str) -> str:
    return text if len(text) <= MAX_REASON_LENGTH else text[: MAX_REASON_LENGTH - 1] + "…"
