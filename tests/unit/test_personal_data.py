"""Sealing signals' personal data so that a data subject can be forgotten (no I/O)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import msgspec
import pytest

from events.contract import Reporter, SealedPersonalData, Signal
from events.personal_data import MemoryKeyStore, PersonalDataVault, UnknownSubject

REPORTER = Reporter(role="huismeester", name="J. de Vries", phone="0612345678")


def signal(
    ref: str, subject_ref: str | None = "hh-8f3a21", reporter: Reporter | None = REPORTER
) -> Signal:
    return Signal(
        signal_ref=ref,
        buurt="BU0363FF03",
        category="overlast",
        summary="Harde muziek",
        observed_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        reporter=reporter,
        subject_ref=subject_ref,
    )


def sealed(
    vault: PersonalDataVault, organisation: str, sent: Signal
) -> dict[str, SealedPersonalData]:
    parts = vault.seal(organisation, sent)
    assert parts is not None
    return {part.field: part for part in parts}


def test_the_seals_hold_the_personal_data_and_show_none_of_it() -> None:
    vault = PersonalDataVault(MemoryKeyStore())
    parts = sealed(vault, "woonzorg", signal("wz-1"))
    assert set(parts) == {"reporter", "subjectRef"}
    encoded = msgspec.json.encode(list(parts.values()))
    for datum in (b"J. de Vries", b"0612345678", b"hh-8f3a21", b"huismeester"):
        assert datum not in encoded
    assert vault.unseal(parts["reporter"]) == REPORTER
    assert vault.unseal(parts["subjectRef"]) == "hh-8f3a21"


def test_a_signal_without_personal_data_has_no_seal() -> None:
    vault = PersonalDataVault(MemoryKeyStore())
    assert vault.seal("woonzorg", signal("wz-1", subject_ref=None, reporter=None)) is None


def test_one_subject_one_key_and_each_seal_its_own_nonce() -> None:
    vault = PersonalDataVault(MemoryKeyStore())
    first = sealed(vault, "woonzorg", signal("wz-1"))["subjectRef"]
    second = sealed(vault, "woonzorg", signal("wz-2"))["subjectRef"]
    assert first.subject == second.subject and first.sealed != second.sealed
    # The same reference from another organisation is another subject.
    theirs = sealed(vault, "stadgenoot", signal("sg-1"))["subjectRef"]
    assert theirs.subject != first.subject
    # A reporter is a subject of their own, known by name and phone however written.
    reporter = sealed(vault, "woonzorg", signal("wz-3"))["reporter"]
    written = Reporter(role="opzichter", name=" j.  DE vries", phone="06-1234 5678")
    again = sealed(vault, "woonzorg", signal("wz-4", reporter=written))["reporter"]
    assert reporter.subject == again.subject != first.subject
    other = sealed(vault, "woonzorg", signal("wz-5", reporter=Reporter(name="P. Jansen")))
    assert other["reporter"].subject != reporter.subject


def test_forgetting_a_subject_makes_its_seals_unreadable_and_no_other() -> None:
    keys = MemoryKeyStore()
    vault = PersonalDataVault(keys)
    first = sealed(vault, "woonzorg", signal("wz-1"))
    kept = sealed(vault, "woonzorg", signal("wz-2", subject_ref="hh-other", reporter=None))

    assert vault.forget("woonzorg", subject_ref="hh-8f3a21")
    assert vault.unseal(first["subjectRef"]) is None
    assert vault.unseal(first["reporter"]) == REPORTER  # the caretaker is someone else
    assert vault.unseal(kept["subjectRef"]) == "hh-other"
    # Another vault on the same keys (another process) cannot read it either.
    assert PersonalDataVault(keys).unseal(first["subjectRef"]) is None

    assert vault.forget("woonzorg", reporter=Reporter(name="J. de Vries", phone="0612345678"))
    assert vault.unseal(first["reporter"]) is None


def test_a_subject_forgotten_and_met_again_gets_a_new_key_the_old_seals_stay_unreadable() -> None:
    vault = PersonalDataVault(MemoryKeyStore())
    before = sealed(vault, "woonzorg", signal("wz-1"))["subjectRef"]
    assert vault.forget("woonzorg", subject_ref="hh-8f3a21")
    after = sealed(vault, "woonzorg", signal("wz-2"))["subjectRef"]
    assert after.subject == before.subject
    assert vault.unseal(before) is None
    assert vault.unseal(after) == "hh-8f3a21"


def test_a_changed_seal_does_not_unseal() -> None:
    vault = PersonalDataVault(MemoryKeyStore())
    parts = sealed(vault, "woonzorg", signal("wz-1"))
    raw = bytearray(base64.b64decode(parts["subjectRef"].sealed))
    raw[20] ^= 1
    changed = msgspec.structs.replace(
        parts["subjectRef"], sealed=base64.b64encode(bytes(raw)).decode()
    )
    assert vault.unseal(changed) is None
    # Nor one moved to another subject or field (both are bound into the seal).
    other = sealed(vault, "woonzorg", signal("wz-2", subject_ref="hh-other"))["subjectRef"]
    moved = msgspec.structs.replace(other, sealed=parts["subjectRef"].sealed)
    assert vault.unseal(moved) is None
    relabelled = msgspec.structs.replace(parts["reporter"], field="subjectRef")
    assert vault.unseal(relabelled) is None


def test_subject_names_are_keyed_hashes_not_references() -> None:
    keys = MemoryKeyStore()
    name = PersonalDataVault(keys).subject("woonzorg", subject_ref="hh-8f3a21")
    assert "hh-8f3a21" not in name and len(name) == 40
    # Stable for the same keys' store; another store's secret gives another name.
    assert PersonalDataVault(keys).subject("woonzorg", subject_ref="hh-8f3a21") == name
    assert PersonalDataVault(MemoryKeyStore()).subject("woonzorg", subject_ref="hh-8f3a21") != name
    with pytest.raises(UnknownSubject):
        PersonalDataVault(keys).subject("woonzorg")
    with pytest.raises(UnknownSubject):
        PersonalDataVault(keys).subject("woonzorg", subject_ref="hh-1", reporter=REPORTER)
