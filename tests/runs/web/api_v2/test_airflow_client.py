"""Airflow's own client (apache-airflow-client 3.3.2) and CLI (airflowctl) against the live server,
with a real scheduler and Celery worker: what a CI job or a notebook written for Airflow does."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from airflow_client.client import ApiClient, ApiException, Configuration
from airflow_client.client.api.dag_api import DAGApi
from airflow_client.client.api.dag_run_api import DagRunApi
from airflow_client.client.api.task_instance_api import TaskInstanceApi
from airflow_client.client.api.x_com_api import XComApi
from airflow_client.client.models.clear_task_instances_body import ClearTaskInstancesBody
from airflow_client.client.models.clear_task_instances_body_task_ids_inner import ClearTaskInstancesBodyTaskIdsInner
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

from runs.models import DagRun
from runs.scheduling.dag_processing import process_dags_folder
from tests.conftest import LiveStack, make_user

pytestmark = pytest.mark.django_db(transaction=True)

RUN_TIMEOUT_SEC = 60


def get_token(url: str, username: str, password: str) -> str:
    """What Airflow's documentation tells a client to do: POST /auth/token."""
    request = urllib.request.Request(f"{url}/auth/token", data=json.dumps({"username": username, "password": password}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return str(json.load(response)["access_token"])


def client_for(url: str, username: str, group: str) -> ApiClient:
    make_user(username, group)
    return ApiClient(Configuration(host=url, access_token=get_token(url, username, "pw-" + username + "-long")))


def wait_finished(runs: DagRunApi, dag_id: str, run_id: str) -> dict[str, object]:
    result = runs.wait_dag_run_until_finished(dag_id, run_id, interval=0.2, _request_timeout=RUN_TIMEOUT_SEC)
    assert isinstance(result, dict)
    return result


class AirflowClientTests:
    def test_it_triggers_a_mapped_dag_and_reads_and_clears_one_index(self, live_server: object,
                                                                     live_stack: Callable[..., LiveStack]) -> None:
        url = str(live_server.url)  # type: ignore[attr-defined]
        process_dags_folder()
        live_stack()
        operator = client_for(url, "ci-operator", "Operator")

        dags = DAGApi(operator).get_dags(tags=["example"], dag_id_pattern="add")
        assert [d.dag_id for d in dags.dags] == ["example_add"]
        assert dags.total_entries == 1

        runs = DagRunApi(operator)
        run = runs.trigger_dag_run("example_add", TriggerDAGRunPostBody(dag_run_id="ci-1", logical_date=None, conf={"who": "ci"}))
        assert (run.dag_run_id, run.conf, run.run_type.value) == ("ci-1", {"who": "ci"}, "manual")
        finished = wait_finished(runs, "example_add", "ci-1")
        assert finished["state"] == "success"

        tis = TaskInstanceApi(operator)
        mapped = tis.get_mapped_task_instances("example_add", "ci-1", "add", order_by=["-map_index"])
        assert mapped.total_entries == 3
        assert [(t.map_index, t.state.value, t.try_number) for t in mapped.task_instances] == [
            (2, "success", 1), (1, "success", 1), (0, "success", 1)]
        assert tis.get_mapped_task_instances("example_add", "ci-1", "add", state=["failed"]).total_entries == 0

        one = tis.get_mapped_task_instance("example_add", "ci-1", "add", 1)
        assert (one.task_id, one.map_index, one.state.value, one.try_number) == ("add", 1, "success", 1)
        xcom = XComApi(operator).get_xcom_entry("example_add", "add", "ci-1", "return_value", map_index=1)
        assert xcom.actual_instance.value == 12
        log = tis.get_log("example_add", "ci-1", "add", 1, map_index=1)
        assert any("adding 2 + 10" in m.event for m in log.content.actual_instance)

        cleared = tis.post_clear_task_instances("example_add", ClearTaskInstancesBody(
            dag_run_id="ci-1", task_ids=[ClearTaskInstancesBodyTaskIdsInner(["add", 1])], only_failed=False, dry_run=False))
        assert [(t.task_id, t.map_index) for t in cleared.task_instances] == [("add", 1)]
        # The run goes on again; wait for it to end with the one index run a second time.
        deadline = time.monotonic() + RUN_TIMEOUT_SEC
        while tis.get_mapped_task_instance("example_add", "ci-1", "add", 1).try_number < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert wait_finished(runs, "example_add", "ci-1")["state"] == "success"
        after = tis.get_mapped_task_instances("example_add", "ci-1", "add")
        assert [(t.map_index, t.state.value, t.try_number) for t in after.task_instances] == [
            (0, "success", 1), (1, "success", 2), (2, "success", 1)]
        assert [t.try_number for t in tis.get_mapped_task_instance_tries("example_add", "ci-1", "add", 1).task_instances] == [1, 2]

    def test_it_refuses_a_viewer_who_triggers_with_403(self, live_server: object) -> None:
        url = str(live_server.url)  # type: ignore[attr-defined]
        process_dags_folder()
        viewer = client_for(url, "ci-viewer", "Viewer")
        assert "example_add" in [d.dag_id for d in DAGApi(viewer).get_dags().dags]
        with pytest.raises(ApiException) as refused:
            DagRunApi(viewer).trigger_dag_run("example_add", TriggerDAGRunPostBody(dag_run_id="nope", logical_date=None))
        assert refused.value.status == 403
        assert json.loads(refused.value.body)["detail"].startswith("Forbidden")
        assert not DagRun.objects.exists()


class AirflowctlTests:
    def test_it_lists_dags_and_runs_with_airflowctl(self, live_server: object, tmp_path: Path) -> None:
        url = str(live_server.url)  # type: ignore[attr-defined]
        process_dags_folder()
        make_user("ctl", "Viewer")
        op = client_for(url, "ctl-op", "Operator")
        DagRunApi(op).trigger_dag_run("example_add", TriggerDAGRunPostBody(dag_run_id="from-ctl-test", logical_date=None))
        # Debug mode keeps the token in a file under AIRFLOW_HOME: there is no keyring on a CI machine.
        env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW_CLI_DEBUG_MODE": "true"}
        ctl = str(Path(sys.executable).with_name("airflowctl"))

        def run(*args: str) -> str:
            done = subprocess.run([ctl, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        run("auth", "login", "--api-url", url, "--username", "ctl", "--password", "pw-ctl-long")
        dags = json.loads(run("dags", "list", "-o", "json").strip().splitlines()[-1])
        assert "example_add" in [d["dag_id"] for d in dags]
        runs = json.loads(run("dagrun", "list", "--dag-id", "example_add", "-o", "json").strip().splitlines()[-1])
        assert [r["dag_run_id"] for page in runs for r in page["dag_runs"]] == ["from-ctl-test"]
