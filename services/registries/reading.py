"""Reading a registry file: a TOML array of tables, every problem named by file, entry and field.

The loaders of the three registries share this. It checks the TOML shape
(which fields, of which type). The rules on the values are small functions
kept beside each entry type (`Organisation`, `Category`, `Buurt`): the entry
checks them when it is made, and a loader hands them to the field readers, so
that a file is refused with every bad field named at once.
Unknown fields are refused too: a typo such as `buurt = [...]` for `buurten`
would otherwise silently widen an organisation's reach.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import TypeVar

E = TypeVar("E", bound=Enum)
# A rule on one field's value: why the value breaks it, or None.
Rule = Callable[[str], str | None]


class RegistryError(ValueError):
    """A registry file Buurtbeeld cannot use; each of `problems` names the entry and field."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(f"{path}: " + "; ".join(self.problems))


class InvalidField(ValueError):
    """A registry entry's `field` breaks one of its rules."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def not_blank(text: str) -> str | None:
    return None if text.strip() else "must not be blank"


def check(*fields: tuple[str, str | None]) -> None:
    """Raise `InvalidField` for the first (field, problem) pair with a problem."""
    for field, problem in fields:
        if problem is not None:
            raise InvalidField(field, problem)


class RegistryFile:
    """The `[[table]]` entries of one TOML file; the first of `fields` identifies an entry."""

    def __init__(self, path: Path, table: str, fields: Sequence[str]) -> None:
        self.path = path
        self.table = table
        self.fields = tuple(fields)
        self.problems: list[str] = []

    def entries(self) -> Iterator[Entry]:
        """Each entry in file order; raises `RegistryError` if the file has none to give."""
        document = self._parse()
        unknown = sorted(set(document) - {self.table})
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            expected = f"expected [[{self.table}]] entries"
            self.problems.append(f"unknown top-level key {names}; {expected}")
        tables = document.get(self.table)
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            shape = "no" if tables is None else "malformed"
            raise RegistryError(self.path, [*self.problems, f"{shape} [[{self.table}]] entries"])
        if not tables:
            raise RegistryError(self.path, [*self.problems, f"no [[{self.table}]] entries"])
        for index, values in enumerate(tables, start=1):
            yield Entry(self, index, values)

    def raise_problems(self) -> None:
        """Raise `RegistryError` if any entry had a problem."""
        if self.problems:
            raise RegistryError(self.path, self.problems)

    def _parse(self) -> dict[str, object]:
        try:
            with self.path.open("rb") as file:
                return tomllib.load(file)
        except FileNotFoundError:
            raise RegistryError(self.path, ["no such file"]) from None
        except OSError as e:
            raise RegistryError(self.path, [f"cannot be read: {e.strerror or e}"]) from None
        except UnicodeDecodeError:
            raise RegistryError(self.path, ["is not UTF-8 text"]) from None
        except tomllib.TOMLDecodeError as e:
            raise RegistryError(self.path, [f"is not valid TOML: {e}"]) from None


class Entry:
    """One `[[table]]` entry; a reader records a bad field's problem and returns a placeholder."""

    def __init__(self, file: RegistryFile, index: int, values: dict[str, object]) -> None:
        self.file = file
        self.index = index
        self.values = values
        self.ok = True
        for name in values:
            if name not in file.fields:
                self.problem(name, f"unknown field; expected {', '.join(file.fields)}")

    @property
    def label(self) -> str:
        """`[[organisation]] entry 2 (id 'woonzorg')`: how problems name this entry."""
        key = self.file.fields[0]
        identity = self.values.get(key)
        named = f" ({key} {identity!r})" if isinstance(identity, str) else ""
        return f"[[{self.file.table}]] entry {self.index}{named}"

    def problem(self, field: str, problem: str) -> None:
        self.ok = False
        self.file.problems.append(f"{self.label}, field {field!r}: {problem}")

    def invalid(self, error: InvalidField) -> None:
        self.problem(error.field, error.problem)

    def string(self, field: str, rule: Rule | None = None) -> str:
        """A required string that keeps `rule` ("" when it is missing or bad)."""
        if self.values.get(field) is None:
            self.problem(field, "missing")
        return self.optional_string(field, rule) or ""

    def optional_string(self, field: str, rule: Rule | None = None) -> str | None:
        """An optional string that keeps `rule` (None when it is absent or bad)."""
        value = self.values.get(field)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(field, f"must be a string, not {_type_name(value)}")
            return None
        if rule is not None and (problem := rule(value)) is not None:
            self.problem(field, problem)
            return None
        return value

    def optional_strings(self, field: str, rule: Rule | None = None) -> list[str] | None:
        """An optional list of strings that each keep `rule` (None when absent or bad)."""
        value = self.values.get(field)
        if value is None:
            return None
        if not isinstance(value, list):
            self.problem(field, f"must be a list of strings, not {_type_name(value)}")
            return None
        for position, item in enumerate(value, start=1):
            if not isinstance(item, str):
                self.problem(field, f"item {position} must be a string, not {_type_name(item)}")
                return None
            if rule is not None and (problem := rule(item)) is not None:
                self.problem(field, problem)
                return None
        return [str(item) for item in value]

    def choice(self, field: str, options: type[E]) -> E | None:
        """A required string that must be the value of one of `options`."""
        text = self.string(field)
        if not isinstance(self.values.get(field), str):
            return None
        return self._option(field, text, options)

    def choices(self, field: str, options: type[E]) -> frozenset[E]:
        """An optional list of values of `options` (empty when absent)."""
        texts = self.optional_strings(field) or []
        chosen = (self._option(field, text, options) for text in texts)
        return frozenset(option for option in chosen if option is not None)

    def positive_number(self, field: str) -> float:
        """A required number above zero (0.0 when missing or not a number)."""
        value = self.values.get(field)
        if value is None:
            self.problem(field, "missing")
            return 0.0
        # bool is an int in Python, but `true` is no number of hours.
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(field, f"must be a number, not {_type_name(value)}")
            return 0.0
        if not 0 < value < float("inf"):
            self.problem(field, f"{value!r} must be a positive, finite number")
            return 0.0
        return float(value)

    def _option(self, field: str, text: str, options: type[E]) -> E | None:
        for option in options:
            if option.value == text:
                return option
        allowed = " | ".join(str(option.value) for option in options)
        self.problem(field, f"{text!r} is not one of {allowed}")
        return None


def _type_name(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)
