"""Reading partner bodies: a signal, or the reasons (and signalRef) for `rejected.<org>`."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.contract import Signal
from services.coordination.intake_reading import (
    MAX_REASON_LENGTH,
    MAX_SIGNAL_BYTES,
    Unreadable,
    organisation_of,
    read_signal,
)
from tests.unit.test_contract import CONTRACT_EXAMPLE

VALID = json.loads(CONTRACT_EXAMPLE)


def body(**changes: object) -> bytes:
    return json.dumps({**VALID, **changes}).encode()


def test_the_contract_example_is_a_signal() -> None:
    signal = read_signal(CONTRACT_EXAMPLE)

    assert isinstance(signal, Signal)
    assert signal.signal_ref == "wz-2026-000123"


def test_the_organisation_is_the_middle_of_the_subject() -> None:
    assert organisation_of("intake.woonzorg.signals") == "woonzorg"


@pytest.mark.parametrize(
    ("raw", "complaint", "signal_ref"),
    [
        (b"{bad", "not valid JSON", None),
        (b"", "not valid JSON", None),
        (b"\xff\xfe", "not valid JSON", None),
        (b'{"signalRef": "wz-1", "summary": "caf\xe9"}', "not valid UTF-8", None),
        (b"[1, 2]", "Expected `object`, got `array`", None),
        (b'"a string"', "Expected `object`, got `str`", None),
        (b"null", "Expected `object`, got `null`", None),
        (b'{"signalRef": "wz-1", "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "nested", None),
        (body(buurt=None), "`$.buurt`", "wz-2026-000123"),
        (json.dumps({"signalRef": "wz-7"}).encode(), "missing required field", "wz-7"),
        (body(buurt="0363FF03"), "`$.buurt`", "wz-2026-000123"),
        (body(observedAt="2026-11-20T09:30:00"), "timezone", "wz-2026-000123"),
        (body(signalRef=7), "`$.signalRef`", None),
        (body(signalRef="x" * 65), "`$.signalRef`", None),
        (body(summary="x" * 501), "`$.summary`", "wz-2026-000123"),
    ],
)
def test_what_is_not_a_signal_is_unreadable_with_the_reason(
    raw: bytes, complaint: str, signal_ref: str | None
) -> None:
    read = read_signal(raw)

    assert isinstance(read, Unreadable)
    [reason] = read.reasons
    assert complaint in reason
    assert read.signal_ref == signal_ref


def test_an_oversized_body_is_not_parsed_at_all() -> None:
    huge = body(padding="x" * MAX_SIGNAL_BYTES)

    read = read_signal(huge)

    assert isinstance(read, Unreadable)
    assert read.signal_ref is None
    assert f"{len(huge)} bytes" in read.reasons[0]


def test_a_reason_quoting_a_long_input_is_cut_short() -> None:
    read = read_signal(body(category="Grof Vuil " * 40))

    assert isinstance(read, Unreadable)
    assert len(read.reasons[0]) <= MAX_REASON_LENGTH


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(raw=st.binary(max_size=300))
def test_any_bytes_are_read_without_raising(raw: bytes) -> None:
    read = read_signal(raw)

    assert isinstance(read, Signal) or read.reasons


@given(value=json_values, ref=st.one_of(st.none(), st.text(max_size=80), st.integers()))
def test_any_json_is_read_without_raising_and_a_good_signal_ref_is_kept(
    value: object, ref: object
) -> None:
    document = {**value, "signalRef": ref} if isinstance(value, dict) else value
    read = read_signal(json.dumps(document).encode())

    assert isinstance(read, Unreadable)
    assert all(len(reason) <= MAX_REASON_LENGTH for reason in read.reasons)
    if isinstance(ref, str) and 1 <= len(ref) <= 64 and isinstance(value, dict):
        assert read.signal_ref == ref
    else:
        assert read.signal_ref is None
