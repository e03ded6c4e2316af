"""Settings: the one place that reads the environment.

`Settings.from_environ()` turns the variables of the configuration table
(CONTRACT.md, README.md) into a frozen, typed object; everything else takes
that object and never looks at `os.environ`. A blank variable counts as unset.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from services.embedded_nats import free_port

T = TypeVar("T")

LogFormat = Literal["console", "json"]

JETSTREAM = "events.jetstream"
SQLITE = "eventsourcing.sqlite"
POSTGRES = "eventsourcing.postgres"
POPO = "eventsourcing.popo"
PERSISTENCE_MODULES = (JETSTREAM, SQLITE, POSTGRES, POPO)

PREFERRED_NATS_PORT = 4222
DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8080
DEFAULT_NATS_TIMEOUT = 5.0
# Signals carry personal data: INTAKE keeps them this long, never forever.
DEFAULT_INTAKE_MAX_AGE = timedelta(days=30)
# How often the coordination service looks for issues unowned past their target time.
DEFAULT_ESCALATION_INTERVAL = timedelta(minutes=1)
NATS_URL_SCHEMES = ("nats", "tls", "ws", "wss")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The eventsourcing PostgreSQL recorder refuses to start without these.
REQUIRED_POSTGRES_VARIABLES = ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw]?)")


class SettingsError(ValueError):
    """One or more environment variables have values Buurtbeeld cannot use."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration: " + "; ".join(problems))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable about a Buurtbeeld process, already validated."""

    data_dir: Path
    # Empty means: start an embedded nats-server.
    nats_urls: tuple[str, ...] = ()
    http_host: str = DEFAULT_HTTP_HOST
    http_port: int = DEFAULT_HTTP_PORT
    # None means: the demo file in the data folder (created on first start).
    organisations_file: Path | None = None
    # None means: the shipped demo list.
    buurten_file: Path | None = None
    persistence_module: str = JETSTREAM
    # The embedded server's port; 0 lets it pick a free one.
    nats_port: int = 0
    nats_replicas: int = 1
    nats_timeout: float = DEFAULT_NATS_TIMEOUT
    intake_max_age: timedelta = DEFAULT_INTAKE_MAX_AGE
    escalation_interval: timedelta = DEFAULT_ESCALATION_INTERVAL
    log_format: LogFormat = "json"
    log_level: str = "INFO"
    # Where the picture's views live: None = SQLite in the data folder, or a
    # postgresql:// URL (or sqlite:///path).
    views_url: str | None = field(default=None, repr=False)
    # POSTGRES_* variables, handed to the eventsourcing PostgreSQL recorder.
    postgres_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        stderr_is_terminal: bool | None = None,
    ) -> Settings:
        """Read and validate the settings; `environ` defaults to `os.environ`.

        Raises `SettingsError` naming every variable with a bad value.
        `stderr_is_terminal` decides the default log format (the process's
        stderr is asked when it is not given).
        """
        env = _Environment(os.environ if environ is None else environ)
        nats_port = env.read("BUURTBEELD_NATS_PORT", _port(minimum=0), None)
        if nats_port is None:
            nats_port = default_nats_port()
        if stderr_is_terminal is None:
            stderr_is_terminal = sys.stderr is not None and sys.stderr.isatty()
        settings = cls(
            data_dir=env.read("BUURTBEELD_DATA", _absolute_path, Path("var").absolute()),
            nats_urls=env.read("NATS_URL", _nats_urls, ()),
            http_host=env.read("BUURTBEELD_HTTP_HOST", str, DEFAULT_HTTP_HOST),
            http_port=env.read("BUURTBEELD_HTTP_PORT", _port(minimum=1), DEFAULT_HTTP_PORT),
            organisations_file=env.read("BUURTBEELD_ORGANISATIONS", _absolute_path, None),
            buurten_file=env.read("BUURTBEELD_BUURTEN", _absolute_path, None),
            persistence_module=env.read("PERSISTENCE_MODULE", _persistence_module, JETSTREAM),
            nats_port=nats_port,
            nats_replicas=env.read("NATS_REPLICAS", _replicas, 1),
            nats_timeout=env.read("NATS_TIMEOUT", _positive_seconds, DEFAULT_NATS_TIMEOUT),
            intake_max_age=env.read(
                "BUURTBEELD_INTAKE_MAX_AGE", parse_duration, DEFAULT_INTAKE_MAX_AGE
            ),
            escalation_interval=env.read(
                "BUURTBEELD_ESCALATION_INTERVAL", parse_duration, DEFAULT_ESCALATION_INTERVAL
            ),
            log_format=env.read(
                "BUURTBEELD_LOG_FORMAT", _log_format, "console" if stderr_is_terminal else "json"
            ),
            log_level=env.read("BUURTBEELD_LOG_LEVEL", _log_level, "INFO"),
            views_url=env.read("BUURTBEELD_VIEWS_URL", _views_url, None),
            postgres_env={k: v for k, v in env.environ.items() if k.startswith("POSTGRES_")},
        )
        if settings.persistence_module == POSTGRES:
            env.require_postgres()
        env.raise_problems()
        return settings

    @property
    def uses_embedded_nats(self) -> bool:
        """True when `buurtbeeld up` starts its own nats-server."""
        return not self.nats_urls

    @property
    def nats_url(self) -> str | None:
        """The external NATS server(s), comma separated as in `NATS_URL`; None if embedded."""
        return ",".join(self.nats_urls) or None

    @property
    def embedded_nats_dir(self) -> Path:
        return self.data_dir / "nats"

    @property
    def embedded_nats_url_file(self) -> Path:
        """Where a running `buurtbeeld up` says its embedded server listens."""
        return self.data_dir / "nats.url"

    @property
    def organisations_path(self) -> Path:
        return self.organisations_file or self.data_dir / "organisations.toml"

    @property
    def creates_demo_organisations(self) -> bool:
        """No organisations file given: the demo one is created (and seeded) on first start."""
        return self.organisations_file is None

    @property
    def sqlite_views_path(self) -> Path:
        return self.data_dir / "views.sqlite"

    @property
    def sqlite_events_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def index_snapshot_path(self) -> Path:
        """The coordination's open issues as they were at its last stop."""
        return self.data_dir / "open-issues.snapshot"

    def eventsourcing_env(self, nats_url: str) -> dict[str, str]:
        """The environment for an eventsourcing Application or InfrastructureFactory.

        `nats_url` is where NATS actually is (the embedded server's URL, or
        `NATS_URL`), comma separated when several.
        """
        env = {
            "PERSISTENCE_MODULE": self.persistence_module,
            "NATS_URL": nats_url,
            "NATS_REPLICAS": str(self.nats_replicas),
            "NATS_TIMEOUT": _seconds_text(self.nats_timeout),
        }
        if self.persistence_module == SQLITE:
            env["SQLITE_DBNAME"] = str(self.sqlite_events_path)
        elif self.persistence_module == POSTGRES:
            env.update(self.postgres_env)
        if self.persistence_module in (SQLITE, POSTGRES):
            # Issue ids are text (`<buurt>.issue.<hex>`); the library reads ids back as UUIDs
            # unless told otherwise, and an issue could then not be loaded to act on.
            env["ORIGINATOR_ID_TYPE"] = "text"
        return env


def default_nats_port(preferred: int = PREFERRED_NATS_PORT) -> int:
    """`preferred` if nothing on 127.0.0.1 listens on it, else a free port."""
    return preferred if port_is_free(preferred) else free_port()


def port_is_free(port: int) -> bool:
    """True if a server could listen on `port` on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Ports in TIME_WAIT (a server that just stopped) count as free, as for nats-server.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _views_url(text: str) -> str:
    if not text.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ValueError(f"{redact_credentials(text)!r}: use postgresql://… or sqlite:///path")
    return text


def parse_duration(text: str) -> timedelta:
    """A positive duration: a number with an optional unit s, m, h, d or w ("30d", "12h", "90")."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 90m or 3600 (seconds)")
    seconds = float(match["amount"]) * _DURATION_UNITS[match["unit"]]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long") from None


def redact_credentials(url: str) -> str:
    """`url` without a password or token, fit for a log line."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"***@{host}:{parts.port}" if parts.port else f"***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


class _Environment:
    """Reads variables and collects every problem, so one error names them all."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def read(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as e:
            self.problems.append(f"{name}: {e}")
            return default

    def require_postgres(self) -> None:
        missing = [name for name in REQUIRED_POSTGRES_VARIABLES if not self.environ.get(name)]
        if not self.environ.get("POSTGRES_PASSWORD") and not self.environ.get(
            "POSTGRES_GET_PASSWORD_TOPIC"
        ):
            missing.append("POSTGRES_PASSWORD")
        for name in missing:
            self.problems.append(f"{name}: required when PERSISTENCE_MODULE={POSTGRES}")

    def raise_problems(self) -> None:
        if self.problems:
            raise SettingsError(self.problems)


def _absolute_path(text: str) -> Path:
    return Path(text).expanduser().absolute()


def _nats_urls(text: str) -> tuple[str, ...]:
    urls = tuple(url.strip() for url in text.split(","))
    schemes = set()
    # Positions, not values, in the messages: a URL may carry a password.
    for position, url in enumerate(urls, start=1):
        if not url:
            raise ValueError(f"entry {position} of the comma-separated list is empty")
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        if parts.scheme not in NATS_URL_SCHEMES:
            raise ValueError(
                f"entry {position} has scheme {parts.scheme!r}; "
                f"use one of {', '.join(NATS_URL_SCHEMES)}"
            )
        if not parts.hostname:
            raise ValueError(f"entry {position} names no host")
        try:
            parts.port  # noqa: B018 - parsing it is the check
        except ValueError:
            raise ValueError(f"entry {position} has a port that is not a number") from None
        schemes.add("websocket" if parts.scheme in ("ws", "wss") else "nats")
    if len(schemes) > 1:
        raise ValueError("websocket and non-websocket URLs cannot be mixed")
    return urls


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _port(*, minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        port = _integer(text)
        if not minimum <= port <= 65535:
            raise ValueError(f"{port} is not a port number ({minimum}-65535)")
        return port

    return parse


def _replicas(text: str) -> int:
    replicas = _integer(text)
    if not 1 <= replicas <= 5:  # JetStream's own limit
        raise ValueError(f"{replicas} replicas: JetStream allows 1 to 5")
    return replicas


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{text!r} must be a positive, finite number of seconds")
    return seconds


def _persistence_module(text: str) -> str:
    if text not in PERSISTENCE_MODULES:
        raise ValueError(f"{text!r} is not one of {', '.join(PERSISTENCE_MODULES)}")
    return text


def _log_format(text: str) -> LogFormat:
    lowered = text.lower()
    if lowered == "console":
        return "console"
    if lowered == "json":
        return "json"
    raise ValueError(f"{text!r} is not console or json")


def _log_level(text: str) -> str:
    level = "WARNING" if text.upper() == "WARN" else text.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS).lower()}")
    return level


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if seconds.is_integer() else repr(seconds)
