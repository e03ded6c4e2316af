"""Content negotiation of `Accept-Encoding` (RFC 9110 12.5.3): does the client take gzip?

Only the buurt's picture is given in gzip, and only when it is an answer given
again (`projections.answers`); everything else is given as it is.
"""

from __future__ import annotations

GZIP_CODINGS = ("gzip", "x-gzip")


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether `accept_encoding` lets the answer be gzip: listed (or `*`) with a weight above 0."""
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *parameters = item.split(";")
        weights[coding.strip().lower()] = _weight(parameters)
    for coding in GZIP_CODINGS:
        if coding in weights:
            return weights[coding] > 0
    return weights.get("*", 0.0) > 0


def _weight(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0
