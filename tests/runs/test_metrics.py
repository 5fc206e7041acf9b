"""Prometheus metrics (runs/metrics.py) and /metrics (runs/web/metrics_view.py)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from runs.cli import wait_for_dag_run
from runs.models import DagImportError
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from tests.conftest import LiveStack


def scrape(client: Client | None = None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200, response.content
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.content.decode()) for s in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.django_db(transaction=True)
class CountersAfterARunTests:
    def test_it_counts_finished_instances_expansions_and_run_durations_from_every_process(
            self, live_stack: Callable[..., LiveStack]) -> None:
        process_dags_folder()
        live_stack()
        before = scrape()
        run = create_dag_run(dag_id="example_add")
        assert wait_for_dag_run(run, timeout=60).state == "success"
        after = scrape()

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        # Written by the Celery worker's pool process, read here by the web process.
        assert moved("airflow_ti_finish_total", dag_id="example_add", task_id="add", state="success") == 3
        assert moved("airflow_ti_finish_total", dag_id="example_add", task_id="total", state="success") == 1
        # Written by the scheduler.
        assert moved("dagsapp_mapping_expansions_total", dag_id="example_add", task_id="add") == 1
        assert moved("airflow_dagrun_duration_count", dag_id="example_add", state="success") == 1
        assert moved("airflow_scheduler_heartbeat_total") > 0
        assert moved("dagsapp_mapping_instances_created_count") >= 1


@pytest.mark.django_db
class GaugesFromTheDatabaseTests:
    def test_it_reports_import_errors_and_queued_instances_read_when_scraped(self) -> None:
        DagImportError.objects.create(filename="/dags/a.py", stacktrace="boom")
        DagImportError.objects.create(filename="/dags/b.py", stacktrace="boom")
        samples = scrape()
        assert value(samples, "airflow_dag_processing_import_errors") == 2
        assert value(samples, "airflow_executor_queued_tasks") == 0

    def test_it_reports_the_triggers_running_and_the_room_left_in_the_triggerers_alive(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from runs.models import Job, JobType, Trigger

        now = timezone.now()
        alive = Job.objects.create(job_type=JobType.TRIGGERER, hostname="a", start_date=now, heartbeat_at=now, capacity=10)
        dead = Job.objects.create(job_type=JobType.TRIGGERER, hostname="b", start_date=now, capacity=10,
                                  heartbeat_at=now - timedelta(minutes=5))
        for owner in (alive, alive, alive, dead):
            Trigger.objects.create(classpath="dagsapp.triggers.TimeDeltaTrigger", kwargs={"delta": 1}, created_date=now, triggerer=owner)
        samples = scrape()
        # The dead triggerer's trigger waits for adoption: neither running nor room.
        assert value(samples, "airflow_triggers_running") == 3
        assert value(samples, "airflow_triggerer_capacity_left") == 7


@pytest.mark.django_db
class AccessTests:
    def test_it_refuses_another_host_without_the_token(self, settings: Any) -> None:
        settings.METRICS_TOKEN = None
        assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 403

    def test_it_answers_another_host_with_the_token(self, settings: Any) -> None:
        settings.METRICS_TOKEN = "s3cret-metrics-token"
        assert Client(REMOTE_ADDR="10.1.2.3", headers={"Authorization": "Bearer wrong"}).get("/metrics").status_code == 403
        scrape(Client(REMOTE_ADDR="10.1.2.3", headers={"Authorization": "Bearer s3cret-metrics-token"}))

    def test_it_refuses_this_host_too_when_local_access_is_off(self, settings: Any) -> None:
        settings.METRICS_ALLOW_LOCAL = False
        settings.METRICS_TOKEN = None
        assert Client().get("/metrics").status_code == 403
