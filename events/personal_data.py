"""Personal data in the immutable log, sealed so that it can be forgotten (crypto-shredding).

A signal's `reporter` and `subjectRef` are personal data (CONTRACT.md). The
log keeps every event for ever, so they are never stored in the clear: each is
sealed (ChaCha20-Poly1305, 256-bit keys) with the key of its *data subject*, and the event carries
only the seals (`SealedPersonalData`). Removing a subject's key
(`PersonalDataVault.forget`) makes their personal data unreadable everywhere in
the log; who did what, when, stays as it was.

A signal concerns up to two data subjects, each the organisation's own: the
household or person it names with `subjectRef`, and its reporter (by name and
phone; a reporter with neither is the organisation's anonymous one). Subjects
are named in the log by a keyed hash (HMAC-SHA256 with a secret kept beside
the keys), never by what identifies them, which is personal data too.

The keys live in a `KeyStore` beside the stored events: a NATS KV bucket with
the JetStream module (`events.jetstream.personal_keys`), a table of the event
store's database with eventsourcing's SQLite and PostgreSQL modules
(`events.personal_keys_sql`), memory for tests and the POPO module. This
module does no I/O itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
from typing import Protocol

import msgspec
from Crypto.Cipher import ChaCha20_Poly1305

from events.contract.intake import Reporter, Signal
from events.contract.issue_events import (
    REPORTER,
    SUBJECT_REF,
    PersonalField,
    SealedPersonalData,
)

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# How long sealing reuses a key it read, and how many it keeps (see `PersonalDataVault`).
KEY_REUSE_SECONDS = 60.0
KEYS_KEPT = 100_000
# The secret the subjects' names are hashed with, kept beside the keys.
SECRET_NAME = "secret"
# What a seal held: a signal's reporter, or the subject it names.
Unsealed = Reporter | str


class KeyStore(Protocol):
    """Where the data subjects' keys are kept; the one place anything is ever deleted."""

    def get(self, name: str) -> bytes | None:
        """The value stored under `name`; None if there is none (or it was deleted)."""
        ...

    def create(self, name: str, value: bytes) -> bytes:
        """Store `value` under `name` unless something is stored there: the value stored."""
        ...

    def delete(self, name: str) -> bool:
        """Remove `name` and every earlier value of it; whether there was one."""
        ...


class MemoryKeyStore:
    """Keys in memory: for tests, and the in-memory persistence module."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes | None:
        return self._values.get(name)

    def create(self, name: str, value: bytes) -> bytes:
        with self._lock:
            return self._values.setdefault(name, value)

    def delete(self, name: str) -> bool:
        with self._lock:
            return self._values.pop(name, None) is not None


class UnknownSubject(Exception):
    """Neither a subject reference nor a signal reference to forget."""


class PersonalDataVault:
    """Seals signals' personal data with their subjects' keys; unseals it; forgets subjects.

    Unsealing always asks the keys' store, so a subject forgotten by any process
    is unreadable at once everywhere. Sealing (intake, thousands a second) keeps
    the keys it used for `KEY_REUSE_SECONDS`; a key forgotten by another process
    meanwhile may seal a few more signals, which are then unreadable: nothing
    leaks. Thread-safe: intake, commands and readers share one.
    """

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._secret: bytes | None = None
        self._cache: dict[str, tuple[bytes, float]] = {}  # subject: key, when read
        self._lock = threading.Lock()

    def subject(
        self, organisation: str, *, subject_ref: str | None = None, reporter: Reporter | None = None
    ) -> str:
        """The name in the log of `organisation`'s data subject: the one it refers to as
        `subject_ref`, or its `reporter` (known by name and phone)."""
        if (subject_ref is None) == (reporter is None):
            raise UnknownSubject("name either a subjectRef or a reporter")
        if subject_ref is not None:
            named = f"subject\x00{organisation}\x00{subject_ref}"
        else:
            assert reporter is not None
            name = " ".join((reporter.name or "").split()).casefold()
            phone = "".join(c for c in reporter.phone or "" if c.isdigit() or c == "+")
            named = f"reporter\x00{organisation}\x00{name}\x00{phone}"
        return hmac.new(self._the_secret(), named.encode(), hashlib.sha256).hexdigest()[:40]

    def seal(self, organisation: str, signal: Signal) -> list[SealedPersonalData] | None:
        """`signal`'s personal data, each part sealed with its subject's key (made if
        new); None if it has none."""
        sealed = []
        if signal.reporter is not None:
            subject = self.subject(organisation, reporter=signal.reporter)
            sealed.append(self._seal(REPORTER, subject, signal.reporter))
        if signal.subject_ref is not None:
            subject = self.subject(organisation, subject_ref=signal.subject_ref)
            sealed.append(self._seal(SUBJECT_REF, subject, signal.subject_ref))
        return sealed or None

    def _seal(self, field: PersonalField, subject: str, value: Unsealed) -> SealedPersonalData:
        key = self._key(subject, create=True)
        assert key is not None
        nonce = os.urandom(NONCE_BYTES)
        cipher = ChaCha20_Poly1305.new(key=key, nonce=nonce)
        cipher.update(f"{field}\x00{subject}".encode())
        body, tag = cipher.encrypt_and_digest(_encode(value))
        return SealedPersonalData(
            field=field, subject=subject, sealed=base64.b64encode(nonce + body + tag).decode()
        )

    def unseal(self, sealed: SealedPersonalData) -> Unsealed | None:
        """What `sealed` holds (a `Reporter`, or a subject reference); None once its
        subject has been forgotten."""
        key = self._key(sealed.subject, create=False)
        if key is None:
            return None
        raw = base64.b64decode(sealed.sealed)
        nonce, body, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:-TAG_BYTES], raw[-TAG_BYTES:]
        cipher = ChaCha20_Poly1305.new(key=key, nonce=nonce)
        cipher.update(f"{sealed.field}\x00{sealed.subject}".encode())
        try:
            plain = cipher.decrypt_and_verify(body, tag)
        except ValueError:  # another key of the same subject (forgotten, then made anew)
            return None
        return _decode_reporter(plain) if sealed.field == REPORTER else _decode_text(plain)

    def forget(
        self, organisation: str, *, subject_ref: str | None = None, reporter: Reporter | None = None
    ) -> bool:
        """Remove the key of `organisation`'s data subject: whether there was one. What was
        sealed with it can no longer be read; a later signal about them gets a new key."""
        subject = self.subject(organisation, subject_ref=subject_ref, reporter=reporter)
        with self._lock:
            self._cache.pop(subject, None)
            return self.keys.delete(subject)

    def _key(self, subject: str, *, create: bool) -> bytes | None:
        """The subject's key: with `create` (sealing), made if there is none, and
        reused for a while; without (unsealing), as the store has it now."""
        if create:
            cached = self._cache.get(subject)
            if cached is not None and time.monotonic() - cached[1] < KEY_REUSE_SECONDS:
                return cached[0]
        with self._lock:  # not while a forget of it is under way
            # Sealing makes the key unless there is one: one call to the store when new.
            key = self.keys.create(subject, os.urandom(KEY_BYTES)) if create else None
            key = key or self.keys.get(subject)
            if key is not None and create:
                if len(self._cache) >= KEYS_KEPT:
                    self._cache.clear()
                self._cache[subject] = (key, time.monotonic())
            return key

    def _the_secret(self) -> bytes:
        if self._secret is None:
            self._secret = self.keys.get(SECRET_NAME) or self.keys.create(
                SECRET_NAME, os.urandom(KEY_BYTES)
            )
        return self._secret


_encode = msgspec.json.Encoder().encode
_decode_reporter = msgspec.json.Decoder(Reporter).decode
_decode_text = msgspec.json.Decoder(str).decode
