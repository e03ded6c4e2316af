"""Hostile input on INTAKE: whatever a partner (or an attacker) publishes, the service holds.

A hand-made corpus of everything that can be wrong with a message on
`intake.<org>.signals`, then a Hypothesis-generated stream of arbitrary bytes and
arbitrary JSON, all published with plain nats-py on a real nats-server while the
coordination service runs. Each message is answered exactly once on
`rejected.<org>` with reasons; valid signals carrying injection strings are
stored verbatim; nothing else lands on `events.>`; and afterwards an ordinary
signal still becomes an issue.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.coordination.intake_handler import TRACKING_NAME
from services.embedded_nats import EmbeddedNats
from tests.integration.partner_support import Partner, until
from tests.integration.test_coordination_service import as_partner, running, signal
from tests.unit.test_coordination import BUURT

# Every message gets its own Nats-Msg-Id: JetStream must store all of them, and a
# hostile signalRef (newlines, control characters) has no business in a header.
EXAMPLES = 150


@dataclass(frozen=True)
class Hostile:
    """One message to publish, and the organisation whose `rejected.<org>` must answer it."""

    organisation: str
    body: bytes
    what: str


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def readable_ref(body: bytes) -> str | None:
    """The `signalRef` a reader could find in `body`, if it is a JSON object with a string one."""
    try:
        decoded = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    ref = decoded.get("signalRef") if isinstance(decoded, dict) else None
    return ref if isinstance(ref, str) else None


def without(field: str, ref: str) -> dict[str, Any]:
    return {k: v for k, v in signal(ref).items() if k != field}


REQUIRED = ("signalRef", "buurt", "category", "summary", "observedAt")
WRONG_VALUES: tuple[Any, ...] = (None, 42, 4.2, True, [], {}, ["a"], {"a": 1})


def hand_made_corpus() -> list[Hostile]:
    """Everything CONTRACT.md says is rejected, and worse."""
    corpus = [
        Hostile("woonzorg", b'{"signalRef": "wz-1", "buurt": ', "truncated JSON"),
        Hostile("woonzorg", b"{not json at all}", "not JSON"),
        Hostile("woonzorg", b'{"signalRef": "wz-\xff\xfe"}', "invalid UTF-8 in a string"),
        Hostile("woonzorg", b"\xc3\x28\xa0\xa1\xe2\x28\xa1", "invalid UTF-8 bytes"),
        Hostile("woonzorg", b"", "empty body"),
        Hostile("woonzorg", b"   \n\t ", "only whitespace"),
        Hostile("woonzorg", b"\x00\x00\x00\x00", "NUL bytes"),
        Hostile("woonzorg", b"[]", "an array"),
        Hostile("woonzorg", encoded([signal("wz-in-array")]), "a signal inside an array"),
        Hostile("woonzorg", b'"wz-2"', "a string"),
        Hostile("woonzorg", b"12345", "a number"),
        Hostile("woonzorg", b"null", "null"),
        Hostile("woonzorg", b"true", "a boolean"),
        Hostile("woonzorg", encoded(signal("wz-twice")) * 2, "two objects back to back"),
        Hostile("woonzorg", b"{}", "an empty object"),
        Hostile("woonzorg", b'{"signalRef": "\\ud800"}', "a lone surrogate"),
        Hostile("woonzorg", encoded(signal("")), "an empty signalRef"),
        Hostile("woonzorg", encoded(signal("r" * 65)), "a signalRef of 65 characters"),
        Hostile("woonzorg", encoded(signal("wz-long", summary="s" * 501)), "501-char summary"),
        Hostile("woonzorg", encoded(signal("wz-empty", summary="")), "an empty summary"),
        Hostile("woonzorg", encoded(signal("wz-key", place="k" * 129)), "129-char location key"),
        Hostile("woonzorg", encoded(signal("wz-when", observedAt="gisteren")), "bad observedAt"),
        Hostile(
            "woonzorg",
            encoded(signal("wz-naive", observedAt="2026-11-20T09:30:00")),
            "observedAt without offset",
        ),
        Hostile(
            "woonzorg", encoded({**signal("wz-lat"), "location": {"lat": 91}}), "lat out of range"
        ),
        Hostile("woonzorg", encoded({**signal("wz-loc"), "location": "hier"}), "location a string"),
        Hostile("woonzorg", encoded(signal("wz-rep", reporter=["me"])), "reporter a list"),
        Hostile("woonzorg", encoded(signal("wz-cat", category="vuurwerk")), "unknown category"),
        Hostile("woonzorg", encoded(signal("wz-CAT", category="Grof-Vuil")), "malformed category"),
        Hostile("woonzorg", encoded(signal("wz-bu", buurt="BU0363ZZ99")), "unknown buurt"),
        Hostile("woonzorg", encoded(signal("wz-bu2", buurt="Lutkemeer")), "malformed buurt"),
        Hostile("woonzorg", encoded(signal("wz-bu3", buurt="bu0363ff03")), "lower-case buurt"),
        Hostile("woonzorg", encoded(signal("wz-bu4", buurt="BU0363FF03 ")), "buurt with a space"),
        Hostile("woonzorg", encoded(signal("wz-bu5", buurt="BU0363*.>")), "buurt with wildcards"),
        # Near the server's max payload (1 MB): far beyond what a signal may be.
        Hostile("woonzorg", encoded(signal("wz-huge", padding="x" * 900_000)), "900 KB body"),
        Hostile("woonzorg", b"x" * 900_000, "900 KB of garbage"),
        Hostile("woonzorg", b"[" * 50_000 + b"]" * 50_000, "deep arrays beyond the size limit"),
        # Organisations: unknown, differently spelled, not active here.
        Hostile("onbekend", encoded(signal("ob-1")), "an unknown organisation"),
        Hostile("Woonzorg", encoded(signal("wz-caps")), "an organisation in capitals"),
        Hostile("onbekend", b"{garbage", "garbage from an unknown organisation"),
        Hostile("ouder-kindteam-osdorp", encoded(signal("ok-1")), "not active in this buurt"),
    ]
    # Each required field missing, and each with every wrong type.
    for field in REQUIRED:
        corpus.append(Hostile("stadgenoot", encoded(without(field, f"sg-no-{field}")), field))
        for n, value in enumerate(WRONG_VALUES):
            body = {**signal(f"sg-{field}-{n}"), field: value}
            corpus.append(Hostile("stadgenoot", encoded(body), f"{field} = {value!r}"))
    return corpus


# Valid signals, but full of strings that break naive systems: they must be stored
# verbatim (the ids and subjects the service makes never come from them).
INJECTIONS = (
    "'; DROP TABLE events; --",
    "wz-1' OR '1'='1",
    "$(rm -rf /); `reboot`",
    "<script>alert('xss')</script>",
    "events.>",
    "*",
    ">",
    "a.b.c",
    "intake.woonzorg.signals",
    "..",
    "line\r\nNats-Msg-Id: woonzorg/forged",
    "\x00\x01\x07\x1b[31mred",
    "\u202eevil\u202c \u200b\u200d\ufeff",
    "עברית مرحبا",
    "../../etc/passwd",
    "%s%n%x {0} {{7*7}} ${jndi:ldap://x}",
)


def json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=80)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=12,
    )


def arbitrary_objects() -> st.SearchStrategy[bytes]:
    """JSON objects: arbitrary ones, some with the signal's field names, and broken signals."""
    names = st.sampled_from(REQUIRED) | st.text(max_size=12)
    anything = st.dictionaries(names, json_values(), max_size=8)
    broken = st.builds(
        lambda field, value: {**signal("hy-broken"), field: value},
        st.sampled_from(REQUIRED),
        json_values().filter(lambda v: not isinstance(v, str)),
    )
    return (anything | broken).map(encoded)


def generated(strategy: st.SearchStrategy[bytes]) -> list[bytes]:
    """`EXAMPLES` examples of `strategy`, collected up front (the service runs async)."""
    found: list[bytes] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(body: bytes) -> None:
        found.append(body)

    collect()
    return found


def test_hostile_messages_are_each_rejected_once_and_change_nothing_else(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    corpus = hand_made_corpus()
    corpus += [Hostile("bewonersportaal", b, "arbitrary bytes") for b in generated(st.binary())]
    corpus += [
        Hostile("wijkteam-nieuw-west", b, "arbitrary JSON object")
        for b in generated(arbitrary_objects())
    ]

    async def story(partner: Partner) -> None:
        async with running(tmp_path, nats_server.url) as app:
            # One ordinary signal first: the picture as it was before the attack.
            await partner.signal("woonzorg", signal("wz-before"))
            await partner.processed()
            before = await partner.events("events.>")
            assert [body["type"] for _, body in before] == ["IssueOpened", "SignalReceived"]

            # The attack: every hostile message, each with its own message id.
            for n, hostile in enumerate(corpus):
                await partner.publish(hostile.organisation, hostile.body, f"hostile/{n}")
            # Valid signals with injection strings in signalRef, summary and location.key.
            for n, text in enumerate(INJECTIONS):
                body = signal(text[:64], place=text, summary=text)
                await partner.publish("woonzorg", body, f"injection/{n}")
            # And afterwards, an ordinary signal: the service still works.
            await partner.signal("woonzorg", signal("wz-after", place="speeltuin"))
            await partner.processed()

            # Exactly one rejection per hostile message, on its organisation's subject,
            # in the order they were sent, with reasons and a readable signalRef or null.
            expected: dict[str, list[Hostile]] = {}
            for hostile in corpus:
                expected.setdefault(hostile.organisation, []).append(hostile)
            for organisation, sent in expected.items():
                await partner.rejected(organisation, len(sent))
            await asyncio.sleep(0.5)  # room for an unwanted extra one to arrive
            await partner.nc.flush()
            assert sorted(partner.rejections) == sorted(expected)
            for organisation, sent in expected.items():
                rejections = partner.rejections[organisation]
                assert len(rejections) == len(sent), organisation
                for hostile, rejection in zip(sent, rejections, strict=True):
                    assert set(rejection) == {"signalRef", "reasons"}, hostile.what
                    assert rejection["reasons"], hostile.what
                    assert all(isinstance(r, str) and r for r in rejection["reasons"])
                    ref = rejection["signalRef"]
                    assert ref is None or ref == readable_ref(hostile.body), hostile.what

            # Nothing else changed: only the valid signals' events were added, verbatim.
            after = await partner.events("events.>")
            assert after[: len(before)] == before
            added = [body for _, body in after[len(before) :]]
            opened = [body for body in added if body["type"] == "IssueOpened"]
            receipts = [body for body in added if body["type"] == "SignalReceived"]
            assert len(opened) == len(receipts) == len(INJECTIONS) + 1
            assert len(added) == len(opened) + len(receipts)
            for text, body in zip(INJECTIONS, opened, strict=False):
                assert body["buurt"] == BUURT
                assert body["issueId"].startswith(f"{BUURT}.issue.")
                assert body["signal"]["signalRef"] == text[:64]
                assert body["signal"]["summary"] == text
                assert body["signal"]["location"]["key"] == text
            assert opened[-1]["signal"]["signalRef"] == "wz-after"

            # And intake's tracked position is past everything that was published.
            async def tracked_past_everything() -> bool:
                tracked = await asyncio.to_thread(app.recorder.max_tracking_id, TRACKING_NAME)
                return (tracked or 0) >= partner.last_sequence

            await until(tracked_past_everything, "tracked INTAKE position past the corpus")

    as_partner(nats_server, tmp_path, story)


# Deep nesting within the size limit: each of these makes msgspec raise
# RecursionError while reading the body; once, that batch was retried forever.
DEEP = b'{"a": ' * 5_000 + b"1" + b"}" * 5_000
DEEPLY_NESTED = (
    b'{"signalRef": "wz-deep-summary", "summary": ' + DEEP + b"}",
    encoded(signal("wz-deep-extra"))[:-1] + b', "extra": ' + DEEP + b"}",
    DEEP,
    b"[" * 30_000 + b"]" * 30_000,
)


def test_deeply_nested_json_is_rejected_and_does_not_block_intake(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async def story(partner: Partner) -> None:
        async with running(tmp_path, nats_server.url):
            # A partner sends deeply nested JSON, small enough to be read...
            for n, body in enumerate(DEEPLY_NESTED):
                await partner.publish("woonzorg", body, f"deep/{n}")
            # ...and then an ordinary signal.
            await partner.signal("woonzorg", signal("wz-after-deep"))

            # Each deep message is rejected, and the ordinary signal becomes an issue,
            # soon: a message that cannot be read must not stop intake for everyone.
            async def all_processed() -> bool:
                info = await partner.js.consumer_info("INTAKE", "coordination")
                floor = info.ack_floor.stream_seq if info.ack_floor else 0
                return floor >= partner.last_sequence

            await until(all_processed, "intake past the deeply nested messages", within=20)
            rejected = await partner.rejected("woonzorg", len(DEEPLY_NESTED))
            assert all(r["reasons"] for r in rejected)
            for body, rejection in zip(DEEPLY_NESTED, rejected, strict=True):
                assert rejection["signalRef"] in (None, readable_ref(body))
            events = await partner.events("events.>")
            assert [body["type"] for _, body in events] == ["IssueOpened", "SignalReceived"]

    as_partner(nats_server, tmp_path, story)
