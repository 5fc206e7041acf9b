"""The infrastructure every other test stands on: the database, the broker, real workers."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from config import celery_app


class DatabaseTests:
    @pytest.mark.django_db
    def test_it_is_postgresql(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            (version,) = cursor.fetchone()
        assert connection.vendor == "postgresql"
        assert version.startswith("PostgreSQL ")

    @pytest.mark.django_db
    def test_it_is_a_test_database(self) -> None:
        assert connection.settings_dict["NAME"].startswith("test_")


class BrokerTests:
    def test_it_answers_ping(self) -> None:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=3)
            assert conn.default_channel.client.ping() is True

    def test_it_is_the_settings_broker(self) -> None:
        assert celery_app.conf.broker_url == settings.CELERY_BROKER_URL

    def test_it_keeps_tests_off_the_dev_queues(self) -> None:
        if not settings.CELERY_BROKER_URL.startswith("redis+socket://"):
            pytest.skip("an explicit CELERY_BROKER_URL is used as given")
        assert settings.CELERY_BROKER_URL.endswith("?virtual_host=15")


class LiveStackTests:
    @pytest.mark.django_db(transaction=True)
    def test_it_starts_a_worker_that_answers_ping(self, live_stack) -> None:
        stack = live_stack(scheduler=False)

        replies = celery_app.control.ping(destination=[stack.worker_name], timeout=5.0)

        assert replies == [{stack.worker_name: {"ok": "pong"}}]
        assert stack.env["DATABASE_URL"].startswith("postgres://")
        assert f"/{connection.settings_dict['NAME']}?" in stack.env["DATABASE_URL"]

    @pytest.mark.django_db(transaction=True)
    def test_it_stops_its_processes(self, live_stack) -> None:
        stack = live_stack(scheduler=False)

        stack.stop()

        assert all(process.poll() is not None for process in stack.processes.values())
        assert "ready." in stack.output("worker")
