"""Deferred instances in the pages: the panel's counts, the Details' trigger (secrets masked), the banner."""
from __future__ import annotations

from django.test import Client
from django.utils import timezone

from dagsapp.triggers import encode_kwargs
from runs.models import DagRun, Job, TaskInstance, Trigger


def _ti(run: DagRun, map_index: int, suffix: str = "") -> str:
    return f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/add/mapped/{map_index}/{suffix}"


def _defer(run: DagRun, map_index: int, *, triggerer: Job | None = None) -> Trigger:
    trigger = Trigger.objects.create(classpath="_pg_row_trigger.PostgresRowTrigger", created_date=timezone.now(), triggerer=triggerer,
                                     kwargs=encode_kwargs({"conn_params": {"user": "etl", "password": "hunter2-secret"},
                                                           "table": "t", "key": "k", "since": timezone.now()}))
    TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=map_index).update(
        state="deferred", trigger=trigger, next_method="row_arrived", trigger_timeout=timezone.now())
    return trigger


class DeferredInstanceDetailsTests:
    def test_it_shows_the_trigger_with_secret_looking_kwargs_masked(self, operator_client: Client, run: DagRun) -> None:
        now = timezone.now()
        job = Job.objects.create(job_type="triggerer", hostname="trig-host", pid=42, start_date=now, heartbeat_at=now)
        _defer(run, 2, triggerer=job)
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            body = operator_client.get(_ti(run, 2), **headers).content.decode()
            assert "_pg_row_trigger.PostgresRowTrigger" in body and "row_arrived" in body
            assert "triggerer" in body and "trig-host" in body
            assert "hunter2-secret" not in body
            assert "etl" in body and "***" in body

    def test_it_counts_deferred_in_the_mapped_panel(self, operator_client: Client, run: DagRun) -> None:
        _defer(run, 2)
        body = operator_client.get(f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/add/", HTTP_HX_REQUEST="true").content.decode()
        assert 'class="count-pill state-deferred"' in body
        assert '<option value="deferred"' in body


class NoTriggererBannerTests:
    def test_it_warns_on_the_dag_list_when_instances_are_deferred_and_no_triggerer_is_alive(self, operator_client: Client,
                                                                                            run: DagRun) -> None:
        assert 'id="no-triggerer"' not in operator_client.get("/").content.decode()
        _defer(run, 2)
        body = operator_client.get("/").content.decode()
        assert 'id="no-triggerer"' in body and "1 task\n  instance is deferred" in body
        now = timezone.now()
        Job.objects.create(job_type="triggerer", hostname="h", pid=1, start_date=now, heartbeat_at=now)
        assert 'id="no-triggerer"' not in operator_client.get("/").content.decode()
