"""Arguments whose name looks secret are masked in the Rendered tab, the API and the task log."""

from __future__ import annotations

from pathlib import Path

from django.test import Client

from runs.cli import run_dag_run_inline
from runs.logs import read_log
from runs.models import TaskInstance
from tests.runs.factories import make_run

SECRET_DAG = """
@dag(dag_id="secretive", start_date=datetime(2024, 1, 1), schedule=None)
def secretive():
    @task
    def connect(host: str, password: str, api_key: str, options: dict) -> str:
        print(f"connecting to {host} with {password} and {api_key} and {options['token']}")
        return host

    connect.partial(password="hunter2-pw", options={"token": "tok-abc-123", "retries": 3}).expand(
        host=["db1", "db2"], api_key=["key-one-1"])

    @task
    def plain(count: int, name: str) -> str:
        print(f"{name} x {count}")
        return name

    plain(count=123, name="visible-name")


secretive()
"""
SECRETS = ("hunter2-pw", "tok-abc-123", "key-one-1")


class SecretMaskingTests:
    def test_it_masks_secret_arguments_in_the_rendered_fields_and_the_log(self, tmp_path: Path, operator_client: Client) -> None:
        run = run_dag_run_inline(make_run(tmp_path, SECRET_DAG, dag_id="secretive"), timeout=30)
        assert run.state == "success"
        for ti in TaskInstance.objects.filter(dag_run=run, task_id="connect"):
            stored = str(ti.rendered_fields)
            assert not any(s in stored for s in SECRETS), stored
            assert "***" in stored and "db" in stored  # the other arguments are still shown
            log, _ = read_log(ti.pk, 1)
            assert "connecting to db" in log and "with *** and *** and ***" in log, log
            assert not any(s in log for s in SECRETS), log
            base = f"/dags/secretive/runs/{run.run_id}/tasks/connect/mapped/{ti.map_index}"
            for url in (f"{base}/?tab=rendered", f"{base}/?tab=log", f"{base}/log/", f"/api{base}".replace("/mapped/", "/mapped/", 1)):
                body = operator_client.get(url).content.decode()
                assert not any(s in body for s in SECRETS), url

    def test_it_leaves_ordinary_arguments_alone(self, tmp_path: Path, db: None) -> None:
        run = run_dag_run_inline(make_run(tmp_path, SECRET_DAG, dag_id="secretive"), timeout=30)
        ti = TaskInstance.objects.get(dag_run=run, task_id="plain")
        assert "visible-name" in str(ti.rendered_fields) and "123" in str(ti.rendered_fields)
        assert "visible-name x 123" in read_log(ti.pk, 1)[0]
