"""Issue 10, #7: a secret mapped argument named by ``map_index_template`` must not leak through
the instance's name (table, panel, duration chart, JSON API), as the scheduler or the worker names it."""

from __future__ import annotations

from pathlib import Path

from django.test import Client

from runs.cli import run_dag_run_inline
from runs.models import TaskInstance
from runs.scheduling.instance_names import name_mapped_instances
from runs.scheduling.steps import expand_mapped_task
from tests.runs.factories import data, make_run

LOGIN_DAG = """
@dag(dag_id="logins", start_date=datetime(2024, 1, 1), schedule=None)
def logins():
    @task(map_index_template="{{ mapping.value }}")
    def login(api_key: str) -> str:
        return "ok"

    login.expand(api_key=["sk-live-AAAA1111", "sk-live-BBBB2222"])


logins()
"""
KEYS = ("sk-live-AAAA1111", "sk-live-BBBB2222")


def pages(run_id: str) -> list[str]:
    task = f"/dags/logins/runs/{run_id}/tasks/login"
    return [f"{task}/", f"{task}/?page=1", f"{task}/durations/", f"{task}/mapped/0/", f"{task}/mapped/1/",
            f"/api{task}/mapped", f"/api{task}/mapped/0", f"/api{task}/mapped/1"]


def assert_nothing_shows_the_keys(client: Client, run_id: str) -> None:
    for url in pages(run_id):
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(url, **headers)
            assert response.status_code == 200, url
            body = response.content.decode()
            assert not any(k in body for k in KEYS), (url, headers)


class SecretInstanceNameTests:
    def test_it_masks_the_scheduler_s_names(self, tmp_path: Path, viewer_client: Client) -> None:
        run = make_run(tmp_path, LOGIN_DAG, dag_id="logins")
        assert expand_mapped_task(dag_run=run, data=data(run), task_id="login") == 2
        assert name_mapped_instances(dag_run=run, data=data(run))
        names = list(TaskInstance.objects.filter(dag_run=run, task_id="login").order_by("map_index").values_list("rendered_map_index", flat=True))
        assert names == ["***", "***"]
        assert_nothing_shows_the_keys(viewer_client, run.run_id)

    def test_it_masks_the_worker_s_names(self, tmp_path: Path, viewer_client: Client) -> None:
        run = run_dag_run_inline(make_run(tmp_path, LOGIN_DAG, dag_id="logins"), timeout=30)
        assert run.state == "success"
        names = list(TaskInstance.objects.filter(dag_run=run, task_id="login").order_by("map_index").values_list("rendered_map_index", flat=True))
        assert names == ["***", "***"]
        assert_nothing_shows_the_keys(viewer_client, run.run_id)
