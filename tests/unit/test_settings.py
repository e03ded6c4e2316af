"""Settings: every variable of the configuration table, its default, and its refusals."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest

from services.settings import (
    DEFAULT_INTAKE_MAX_AGE,
    Settings,
    SettingsError,
    default_nats_port,
    parse_duration,
    redact_credentials,
)


def settings_from(**environ: str) -> Settings:
    """Settings from exactly `environ`, as if stderr were not a terminal."""
    return Settings.from_environ(environ, stderr_is_terminal=False)


def problems_with(**environ: str) -> list[str]:
    with pytest.raises(SettingsError) as refused:
        settings_from(**environ)
    return refused.value.problems


class TestDefaults:
    def test_an_empty_environment_runs_everything_embedded_under_var(self) -> None:
        settings = settings_from()

        assert settings.uses_embedded_nats
        assert settings.nats_url is None
        assert settings.data_dir == Path("var").absolute()
        assert settings.embedded_nats_dir == Path("var").absolute() / "nats"
        assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
        assert settings.persistence_module == "events.jetstream"
        assert settings.nats_replicas == 1
        assert settings.nats_timeout == 5.0
        assert settings.intake_max_age == timedelta(days=30) == DEFAULT_INTAKE_MAX_AGE
        assert settings.escalation_interval == timedelta(minutes=1)
        assert settings.log_level == "INFO"
        assert 0 < settings.nats_port <= 65535

    def test_without_organisations_file_the_demo_one_in_the_data_folder_is_used(self) -> None:
        settings = settings_from(BUURTBEELD_DATA="/srv/bb")

        assert settings.creates_demo_organisations
        assert settings.organisations_path == Path("/srv/bb/organisations.toml")
        assert settings.buurten_file is None

    def test_log_format_follows_whether_stderr_is_a_terminal(self) -> None:
        assert Settings.from_environ({}, stderr_is_terminal=True).log_format == "console"
        assert Settings.from_environ({}, stderr_is_terminal=False).log_format == "json"

    def test_blank_values_count_as_unset(self) -> None:
        settings = settings_from(NATS_URL="  ", BUURTBEELD_HTTP_PORT="", NATS_REPLICAS=" ")

        assert settings.uses_embedded_nats
        assert settings.http_port == 8080
        assert settings.nats_replicas == 1

    def test_without_an_environ_argument_the_process_environment_is_read(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("BUURTBEELD_HTTP_PORT", "9090")

        assert Settings.from_environ().http_port == 9090


class TestEveryVariable:
    def test_each_variable_of_the_table_is_honoured(self) -> None:
        settings = settings_from(
            NATS_URL="nats://n1:4222, nats://n2:4222 ,tls://n3:4222",
            BUURTBEELD_DATA="/srv/buurtbeeld",
            BUURTBEELD_HTTP_PORT="8181",
            BUURTBEELD_HTTP_HOST="0.0.0.0",
            BUURTBEELD_ORGANISATIONS="/etc/buurtbeeld/organisations.toml",
            BUURTBEELD_BUURTEN="/etc/buurtbeeld/buurten.toml",
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            BUURTBEELD_NATS_PORT="14222",
            NATS_REPLICAS="3",
            NATS_TIMEOUT="2.5",
            BUURTBEELD_INTAKE_MAX_AGE="12h",
            BUURTBEELD_ESCALATION_INTERVAL="15s",
            BUURTBEELD_LOG_FORMAT="console",
            BUURTBEELD_LOG_LEVEL="debug",
        )

        assert settings.nats_urls == ("nats://n1:4222", "nats://n2:4222", "tls://n3:4222")
        assert settings.nats_url == "nats://n1:4222,nats://n2:4222,tls://n3:4222"
        assert not settings.uses_embedded_nats
        assert settings.data_dir == Path("/srv/buurtbeeld")
        assert (settings.http_host, settings.http_port) == ("0.0.0.0", 8181)
        assert settings.organisations_path == Path("/etc/buurtbeeld/organisations.toml")
        assert not settings.creates_demo_organisations
        assert settings.buurten_file == Path("/etc/buurtbeeld/buurten.toml")
        assert settings.persistence_module == "eventsourcing.sqlite"
        assert settings.nats_port == 14222
        assert settings.nats_replicas == 3
        assert settings.nats_timeout == 2.5
        assert settings.intake_max_age == timedelta(hours=12)
        assert settings.escalation_interval == timedelta(seconds=15)
        assert settings.log_format == "console"
        assert settings.log_level == "DEBUG"

    def test_relative_paths_become_absolute(self) -> None:
        settings = settings_from(BUURTBEELD_DATA="data", BUURTBEELD_BUURTEN="conf/buurten.toml")

        assert settings.data_dir == Path("data").absolute()
        assert settings.buurten_file == Path("conf/buurten.toml").absolute()

    def test_nats_port_zero_leaves_the_choice_to_the_embedded_server(self) -> None:
        assert settings_from(BUURTBEELD_NATS_PORT="0").nats_port == 0

    @pytest.mark.parametrize("level", ["warn", "WARNING", "Warning"])
    def test_log_level_names_are_case_insensitive_and_warn_means_warning(
        self, level: str
    ) -> None:
        assert settings_from(BUURTBEELD_LOG_LEVEL=level).log_level == "WARNING"


class TestRefusals:
    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("BUURTBEELD_HTTP_PORT", "eighty"),
            ("BUURTBEELD_HTTP_PORT", "0"),
            ("BUURTBEELD_HTTP_PORT", "65536"),
            ("BUURTBEELD_NATS_PORT", "-1"),
            ("NATS_REPLICAS", "0"),
            ("NATS_REPLICAS", "6"),
            ("NATS_REPLICAS", "three"),
            ("NATS_TIMEOUT", "0"),
            ("NATS_TIMEOUT", "soon"),
            ("NATS_TIMEOUT", "nan"),
            ("NATS_TIMEOUT", "inf"),
            ("BUURTBEELD_INTAKE_MAX_AGE", "0"),
            ("BUURTBEELD_INTAKE_MAX_AGE", "0d"),
            ("BUURTBEELD_INTAKE_MAX_AGE", "a month"),
            ("BUURTBEELD_INTAKE_MAX_AGE", "10y"),
            ("BUURTBEELD_INTAKE_MAX_AGE", "-3d"),
            ("BUURTBEELD_ESCALATION_INTERVAL", "0s"),
            ("BUURTBEELD_ESCALATION_INTERVAL", "often"),
            ("BUURTBEELD_LOG_FORMAT", "xml"),
            ("BUURTBEELD_LOG_LEVEL", "loud"),
            ("PERSISTENCE_MODULE", "events.jetsteam"),
            ("NATS_URL", "http://n1:4222"),
            ("NATS_URL", "nats://n1:4222,,nats://n2:4222"),
            ("NATS_URL", "nats://n1:4222,ws://n2:8080"),
            ("NATS_URL", "nats://:4222"),
            ("NATS_URL", "nats://n1:port"),
        ],
    )
    def test_a_bad_value_is_refused_naming_the_variable(self, variable: str, value: str) -> None:
        problems = problems_with(**{variable: value})

        assert len(problems) == 1
        assert problems[0].startswith(f"{variable}: ")

    def test_every_bad_variable_is_named_at_once(self) -> None:
        problems = problems_with(NATS_REPLICAS="0", BUURTBEELD_LOG_FORMAT="xml")

        assert [p.split(":")[0] for p in problems] == ["NATS_REPLICAS", "BUURTBEELD_LOG_FORMAT"]

    def test_the_error_message_names_the_variable_too(self) -> None:
        with pytest.raises(SettingsError, match="NATS_REPLICAS"):
            settings_from(NATS_REPLICAS="0")

    def test_a_nats_url_with_a_password_is_not_repeated_in_the_error(self) -> None:
        problems = problems_with(NATS_URL="nats://user:s3cret@n1:4222,http://n2")

        assert problems == ["NATS_URL: entry 2 has scheme 'http'; use one of nats, tls, ws, wss"]

    def test_postgres_persistence_needs_its_connection_variables(self) -> None:
        problems = problems_with(PERSISTENCE_MODULE="eventsourcing.postgres", POSTGRES_HOST="db")

        assert sorted(p.split(":")[0] for p in problems) == [
            "POSTGRES_DBNAME",
            "POSTGRES_PASSWORD",
            "POSTGRES_USER",
        ]


class TestEventsourcingEnvironment:
    def test_jetstream_gets_the_nats_settings(self) -> None:
        settings = settings_from(NATS_REPLICAS="3", NATS_TIMEOUT="2.5", POSTGRES_HOST="db")

        assert settings.eventsourcing_env("nats://n1:4222,nats://n2:4222") == {
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": "nats://n1:4222,nats://n2:4222",
            "NATS_REPLICAS": "3",
            "NATS_TIMEOUT": "2.5",
        }

    def test_a_whole_number_timeout_is_written_as_an_integer(self) -> None:
        env = settings_from(NATS_TIMEOUT="5").eventsourcing_env("nats://127.0.0.1:4222")

        assert env["NATS_TIMEOUT"] == "5"

    def test_sqlite_stores_events_in_the_data_folder(self) -> None:
        settings = settings_from(PERSISTENCE_MODULE="eventsourcing.sqlite", BUURTBEELD_DATA="/d")

        env = settings.eventsourcing_env("nats://127.0.0.1:4222")

        assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
        assert env["SQLITE_DBNAME"] == "/d/events.sqlite"
        assert env["ORIGINATOR_ID_TYPE"] == "text"  # issue ids are not UUIDs

    def test_postgres_gets_the_postgres_variables_passed_through(self) -> None:
        postgres = {
            "POSTGRES_DBNAME": "buurtbeeld",
            "POSTGRES_HOST": "db",
            "POSTGRES_PORT": "5433",
            "POSTGRES_USER": "bb",
            "POSTGRES_PASSWORD": "s3cret",
        }
        settings = settings_from(PERSISTENCE_MODULE="eventsourcing.postgres", **postgres)

        env = settings.eventsourcing_env("nats://127.0.0.1:4222")

        assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
        assert {k: v for k, v in env.items() if k.startswith("POSTGRES_")} == postgres
        assert env["ORIGINATOR_ID_TYPE"] == "text"
        assert "SQLITE_DBNAME" not in env
        assert "s3cret" not in repr(settings)

    def test_popo_keeps_events_in_memory(self) -> None:
        env = settings_from(PERSISTENCE_MODULE="eventsourcing.popo").eventsourcing_env("nats://x")

        assert set(env) == {"PERSISTENCE_MODULE", "NATS_URL", "NATS_REPLICAS", "NATS_TIMEOUT"}


class TestDefaultNatsPort:
    def test_the_preferred_port_when_nothing_listens_on_it(self) -> None:
        with socket.socket() as holder:
            # Find a port that is free, then let it go again.
            holder.bind(("127.0.0.1", 0))
            port = holder.getsockname()[1]

        assert default_nats_port(preferred=port) == port

    def test_another_free_port_when_something_listens_on_the_preferred_one(self) -> None:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            taken = listener.getsockname()[1]

            chosen = default_nats_port(preferred=taken)

            assert chosen != taken
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", chosen))


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("30d", timedelta(days=30)),
            ("12h", timedelta(hours=12)),
            ("90m", timedelta(minutes=90)),
            ("45s", timedelta(seconds=45)),
            ("3600", timedelta(hours=1)),
            ("1.5h", timedelta(minutes=90)),
            ("2w", timedelta(days=14)),
            ("7 D", timedelta(days=7)),
        ],
    )
    def test_a_number_with_an_optional_unit(self, text: str, expected: timedelta) -> None:
        assert parse_duration(text) == expected


class TestRedaction:
    def test_passwords_and_tokens_are_hidden(self) -> None:
        assert redact_credentials("nats://user:pw@n1:4222") == "nats://***@n1:4222"
        assert redact_credentials("tls://token@n1") == "tls://***@n1"

    def test_a_url_without_credentials_stays_as_it_is(self) -> None:
        assert redact_credentials("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
