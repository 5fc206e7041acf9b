from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import env_bool, env_int, parse_database_url


class ParseDatabaseUrlTests:
    def test_it_reads_a_tcp_url(self) -> None:
        db = parse_database_url("postgres://dags:p%40ss@db.example:6543/dagsapp?sslmode=require")

        assert db == {
            "NAME": "dagsapp",
            "USER": "dags",
            "PASSWORD": "p@ss",
            "HOST": "db.example",
            "PORT": "6543",
            "OPTIONS": {"sslmode": "require"},
        }

    def test_it_reads_a_unix_socket_directory_from_the_query(self) -> None:
        db = parse_database_url("postgresql://postgres@/test_dagsapp?host=%2Fwork%2Fvar%2Fpgdata&port=5432")

        assert (db["NAME"], db["HOST"], db["PORT"], db["OPTIONS"]) == ("test_dagsapp", "/work/var/pgdata", "5432", {})

    def test_it_refuses_another_scheme(self) -> None:
        with pytest.raises(ImproperlyConfigured, match="not 'mysql'"):
            parse_database_url("mysql://u@h/db")

    def test_it_refuses_a_url_without_database(self) -> None:
        with pytest.raises(ImproperlyConfigured, match="names no database"):
            parse_database_url("postgres://u@h:5432/")


class EnvHelperTests:
    def test_it_refuses_a_bad_boolean(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("X_FLAG", "maybe")

        with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
            env_bool("X_FLAG", False)

    def test_it_refuses_an_int_out_of_range(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("X_DB", "16")

        with pytest.raises(ImproperlyConfigured, match=r"X_DB=16 is outside \[0, 15\]"):
            env_int("X_DB", 0, minimum=0, maximum=15)

    def test_it_treats_empty_as_unset(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("X_DB", "")

        assert env_int("X_DB", 7) == 7
