"""The dashboard's Dutch: ages, moments, statuses, timeline entries and refusals.

Pure functions, no I/O: the templates call them, the unit tests pin them down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR

STATUS_LABELS = {
    "unowned": "Geen eigenaar",
    "escalated": "Geëscaleerd",
    "handover-pending": "Overdracht voorgesteld",
    "owned": "In behandeling",
    "resolved": "Opgelost",
    "merged": "Samengevoegd",
}
# The status filter's choices, in the order the buurt page offers them.
STATUS_FILTER_LABELS = {
    "open": "Alle open zaken",
    "unowned": "Geen eigenaar",
    "escalated": "Geëscaleerd",
    "handover-pending": "Overdracht voorgesteld",
    "owned": "In behandeling",
    "resolved": "Opgelost",
    "all": "Alles, ook afgesloten",
}
SENSITIVITY_LABELS = {"open": "open", "vertrouwelijk": "vertrouwelijk"}
HIDDEN_CONTENT = "vertrouwelijk — inhoud niet zichtbaar"
_MONTHS = ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec")

# What the domain's refusal codes mean to a coordinator.
REFUSALS = {
    "already-owned": "Deze zaak heeft al een eigenaar, of er loopt een overdracht.",
    "not-owner": "Dat kan alleen de organisatie die eigenaar is van deze zaak.",
    "not-found": "Deze zaak bestaat niet, of uw organisatie mag haar niet zien.",
    "invalid": "Dat kan niet met deze zaak of deze gegevens.",
    "conflict": "De zaak is net door een ander gewijzigd, of de opslag was even onbereikbaar. "
    "Probeer het opnieuw.",
    "forbidden": "Uw organisatie mag dit niet doen.",
}
# Confirmations after a command was accepted, by verb.
DONE = {
    "claim": "U hebt de zaak opgepakt: uw organisatie is nu eigenaar.",
    "release": "U hebt de zaak losgelaten: ze heeft nu geen eigenaar.",
    "handover": "De overdracht is voorgesteld; de andere organisatie moet haar accepteren.",
    "accept-handover": "U hebt de overdracht geaccepteerd: uw organisatie is nu eigenaar.",
    "decline-handover": "U hebt de overdracht geweigerd.",
    "resolve": "De zaak is opgelost.",
    "reopen": "De zaak is heropend en heeft geen eigenaar.",
}


def _amsterdam() -> tzinfo:
    try:
        return ZoneInfo("Europe/Amsterdam")
    except ZoneInfoNotFoundError:  # a system without tzdata: UTC, labelled as such
        return UTC


LOCAL_TIME = _amsterdam()


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def age_text(seconds: float) -> str:
    """How long ago, in words: "zojuist", "5 minuten", "3 uur", "2 dagen", "3 weken"."""
    seconds = max(0, int(seconds))
    if seconds < MINUTE:
        return "zojuist"
    if seconds < HOUR:
        return plural(seconds // MINUTE, "minuut", "minuten")
    if seconds < DAY:
        return plural(seconds // HOUR, "uur", "uur")
    days = seconds // DAY
    if days < 14:
        return plural(days, "dag", "dagen")
    if days < 61:
        return plural(days // 7, "week", "weken")
    if days < 365:
        return plural(days // 30, "maand", "maanden")
    return plural(days // 365, "jaar", "jaar")


def age_between(earlier: datetime, now: datetime) -> str:
    return age_text((now - earlier).total_seconds())


def moment_text(moment: datetime | str | None, zone: tzinfo = LOCAL_TIME) -> str:
    """A moment as Dutch readers write it, in Dutch time: "20 nov 2026, 09:30"."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"


def local_moment(text: str, zone: tzinfo = LOCAL_TIME) -> datetime:
    """A moment as a `datetime-local` field gives it ("2026-11-20T09:30", seconds
    optional), read in Dutch time; ValueError when it is not one."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        raise ValueError(f"{text!r} is not a local date and time")
    return moment.replace(tzinfo=zone).astimezone(UTC)


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def refusal_text(code: str) -> str:
    """What a refusal code means, in a sentence a coordinator can act on."""
    return REFUSALS.get(code, "Dat kon niet.")


def timeline_text(entry: Mapping[str, Any], name: Callable[[str], str]) -> str:
    """One history entry (`projections.timeline`) as a sentence; `name` names organisations."""
    kind = entry.get("type", "")
    who = name(str(entry.get("organisation", "")))
    if kind == "IssueOpened":
        return f"Zaak geopend door een melding van {who}"
    if kind == "SignalAttached":
        return f"Nieuwe melding van {who} bij deze zaak"
    if kind == "OwnershipClaimed":
        return f"{who} heeft de zaak opgepakt"
    if kind == "HandoverOffered":
        return f"{who} stelt overdracht voor aan {name(str(entry.get('to', '')))}"
    if kind == "HandoverAccepted":
        previous = entry.get("previousOwner")
        was = f" (was {name(str(previous))})" if previous else ""
        return f"{who} heeft de overdracht geaccepteerd en is eigenaar{was}"
    if kind == "HandoverDeclined":
        return f"{who} heeft de overdracht geweigerd"
    if kind == "OwnershipReleased":
        return f"{who} heeft de zaak losgelaten"
    if kind == "IssueResolved":
        return f"{who} heeft de zaak opgelost"
    if kind == "IssueReopened":
        return f"{who} heeft de zaak heropend"
    if kind == "IssueMerged":
        return f"{who} heeft de zaak samengevoegd met een andere zaak"
    if kind == "IssueAbsorbed":
        count = plural(int(entry.get("signalCount", 0)), "melding", "meldingen")
        return f"{who} heeft een andere zaak hierbij gevoegd ({count})"
    if kind == "IssueEscalated":
        return "Geëscaleerd: niet op tijd opgepakt"
    return f"{kind} door {who}"


def timeline_detail(entry: Mapping[str, Any]) -> str | None:
    """The words an entry carries (a signal's summary, a resolution, a reason), if shown."""
    signal = entry.get("signal")
    if isinstance(signal, Mapping) and signal.get("summary"):
        return str(signal["summary"])
    for key in ("resolution", "reason"):
        if entry.get(key):
            return str(entry[key])
    return None


# Entries whose words need-to-know may hide.
CONTENT_EVENTS = frozenset({"IssueOpened", "SignalAttached", "IssueResolved", "IssueReopened"})
