"""Buurten: the CBS neighbourhoods signals may name.

A buurt code's format is always checked. When a list of known buurten is
configured (a deployment's own file, or the shipped Amsterdam Nieuw-West demo
list), a well-formed code that is not on it is refused too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from services.registries.reading import InvalidField, RegistryFile, check, not_blank

# re.ASCII: without it \d also matches other scripts' digits, such as "٠٣٦٣".
BUURT_CODE = re.compile(r"^BU\d{4}[0-9A-Z]{4}$", re.ASCII)
WIJK_CODE = re.compile(r"^WK\d{4}[0-9A-Z]{2}$", re.ASCII)
BUURT_FIELDS = ("code", "name", "wijk")
DEMO_BUURTEN = "demo_buurten.toml"
# Codes are echoed in refusals; a hostile one is cut short there.
_SHOWN_AT_MOST = 40


@dataclass(frozen=True, kw_only=True)
class Buurt:
    """A CBS buurt; `wijk`, when given, is the CBS wijk that contains it."""

    code: str
    name: str
    wijk: str | None = None

    def __post_init__(self) -> None:
        check(
            ("code", buurt_code_problem(self.code)),
            ("name", not_blank(self.name)),
            ("wijk", None if self.wijk is None else wijk_code_problem(self.wijk)),
            ("wijk", None if self.wijk is None else self._wijk_contains_me(self.wijk)),
        )

    def _wijk_contains_me(self, wijk: str) -> str | None:
        # CBS codes nest: buurt BU0363FF03 lies in wijk WK0363FF.
        expected = f"WK{self.code[2:8]}"
        if wijk == expected:
            return None
        return f"{wijk!r} does not contain buurt {self.code} ({expected})"


class Buurten:
    """The buurten registry; `known` None means any well-formed code is accepted."""

    def __init__(self, known: Iterable[Buurt] | None = None) -> None:
        self._by_code: dict[str, Buurt] | None = None
        if known is not None:
            self._by_code = {}
            for buurt in known:
                if buurt.code in self._by_code:
                    raise ValueError(f"buurt {buurt.code} appears twice")
                self._by_code[buurt.code] = buurt

    @property
    def enforces_list(self) -> bool:
        """True when only the listed buurten are accepted."""
        return self._by_code is not None

    def get(self, code: str) -> Buurt | None:
        return None if self._by_code is None else self._by_code.get(code)

    def check(self, code: str) -> list[str]:
        """Why `code` cannot be used as a buurt; empty when it can."""
        if (problem := buurt_code_problem(code)) is not None:
            return [problem]
        if self._by_code is not None and code not in self._by_code:
            return [f"buurt {code} is not one of the buurten this deployment knows"]
        return []

    def __contains__(self, code: object) -> bool:
        return self._by_code is not None and code in self._by_code

    def __iter__(self) -> Iterator[Buurt]:
        return iter(() if self._by_code is None else self._by_code.values())

    def __len__(self) -> int:
        return 0 if self._by_code is None else len(self._by_code)


def buurt_code_problem(code: str) -> str | None:
    """Why `code` is not a CBS buurt code, or None when it is one."""
    if BUURT_CODE.fullmatch(code):
        return None
    shown = code if len(code) <= _SHOWN_AT_MOST else code[:_SHOWN_AT_MOST] + "..."
    return f"{shown!r} is not a CBS buurt code (BU + 4 digits + 4 of 0-9 A-Z, e.g. BU0363FF03)"


def wijk_code_problem(code: str) -> str | None:
    """Why `code` is not a CBS wijk code, or None when it is one."""
    if WIJK_CODE.fullmatch(code):
        return None
    return f"{code!r} is not a CBS wijk code (WK + 4 digits + 2 of 0-9 A-Z, e.g. WK0363FF)"


def load_buurten(path: Path) -> Buurten:
    """The known buurten of the TOML file at `path` (CONTRACT.md's format).

    Raises `RegistryError` naming the file, and the entry and field of every problem.
    """
    file = RegistryFile(path, "buurt", BUURT_FIELDS)
    buurten: list[Buurt] = []
    first_with_code: dict[str, int] = {}
    for entry in file.entries():
        code = entry.string("code", buurt_code_problem)
        name = entry.string("name", not_blank)
        wijk = entry.optional_string("wijk", wijk_code_problem)
        if code in first_with_code:
            entry.problem("code", f"already used by entry {first_with_code[code]}")
        elif code:
            first_with_code[code] = entry.index
        if not entry.ok:
            continue
        try:
            buurten.append(Buurt(code=code, name=name, wijk=wijk))
        except InvalidField as e:
            entry.invalid(e)
    file.raise_problems()
    return Buurten(buurten)


def load_demo_buurten() -> Buurten:
    """The shipped Amsterdam Nieuw-West demo list."""
    with resources.as_file(resources.files("services.registries") / DEMO_BUURTEN) as path:
        return load_buurten(path)
