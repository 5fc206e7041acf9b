"""DAG runs: list, get, trigger, patch state, clear, wait (runs/web/api_v2/dag_runs.py)."""
from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from runs.models import DagRun, TaskInstance
from tests.runs.web.api_v2.conftest import ApiClient

JSON = "application/json"
RUNS = "/api/v2/dags/api_add/dagRuns"

pytestmark = pytest.mark.django_db


class TriggerTests:
    def test_it_triggers_a_run_with_its_id_logical_date_and_conf(self, api: Callable[[str | None], ApiClient],
                                                                 parsed_api_dags: object) -> None:
        body = {"dag_run_id": "nightly-1", "logical_date": "2026-01-02T03:04:05Z", "conf": {"limit": 3}}
        run = api("Operator").post(RUNS, body, content_type=JSON).json()
        assert {k: run[k] for k in ("dag_run_id", "logical_date", "conf", "state", "run_type")} == {
            "dag_run_id": "nightly-1", "logical_date": "2026-01-02T03:04:05Z", "conf": {"limit": 3}, "state": "queued",
            "run_type": "manual"}
        stored = DagRun.objects.get(run_id="nightly-1")
        assert stored.conf == {"limit": 3}
        assert TaskInstance.objects.filter(dag_run=stored).count() == 2

    def test_it_refuses_a_taken_run_id_with_409_and_an_unknown_dag_with_404(self, api: Callable[[str | None], ApiClient],
                                                                           parsed_api_dags: object) -> None:
        operator = api("Operator")
        operator.post(RUNS, {"dag_run_id": "once"}, content_type=JSON)
        again = operator.post(RUNS, {"dag_run_id": "once"}, content_type=JSON)
        assert again.status_code == 409
        assert again.json() == {"detail": "A DAG Run already exists for DAG api_add with run id once"}
        assert operator.post("/api/v2/dags/nope/dagRuns", {}, content_type=JSON).status_code == 404

    def test_it_refuses_a_conf_that_is_not_an_object_with_422(self, api: Callable[[str | None], ApiClient],
                                                             parsed_api_dags: object) -> None:
        response = api("Operator").post(RUNS, {"conf": [1, 2]}, content_type=JSON)
        assert response.status_code == 422
        assert not DagRun.objects.exists()


class ListTests:
    def test_it_lists_runs_by_state_and_across_dags(self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        viewer = api("Viewer")
        assert [r["dag_run_id"] for r in viewer.get(RUNS, {"state": "running"}).json()["dag_runs"]] == ["r1"]
        assert viewer.get(RUNS, {"state": "success"}).json() == {"dag_runs": [], "total_entries": 0}
        assert viewer.get("/api/v2/dags/~/dagRuns").json()["total_entries"] == 1
        assert viewer.get(f"{RUNS}/r1").json()["conf"] == {"k": "v"}


class PatchAndClearTests:
    def test_it_marks_a_run_failed_failing_running_instances_and_skipping_the_rest(
            self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        response = api("Operator").patch(f"{RUNS}/r1", {"state": "failed"}, content_type=JSON)
        assert response.json()["state"] == "failed"
        states = dict(TaskInstance.objects.filter(dag_run=mapped_run).values_list("task_id", "map_index", "state")
                      .values_list("map_index", "state").filter(task_id="add"))
        assert states == {0: "success", 1: "success", 2: "failed", 3: "failed", 4: "success"}
        assert TaskInstance.objects.get(dag_run=mapped_run, task_id="total").state == "skipped"
        mapped_run.refresh_from_db()
        assert mapped_run.state_summary is not None

    def test_it_clears_only_the_failed_instances_of_a_run(self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        operator = api("Operator")
        dry = operator.post(f"{RUNS}/r1/clear", {"only_failed": True}, content_type=JSON).json()
        assert [(t["task_id"], t["map_index"]) for t in dry["task_instances"]] == [("add", 2)]
        assert TaskInstance.objects.get(dag_run=mapped_run, task_id="add", map_index=2).state == "failed"
        done = operator.post(f"{RUNS}/r1/clear", {"only_failed": True, "dry_run": False}, content_type=JSON).json()
        assert done["dag_run_id"] == "r1"
        assert TaskInstance.objects.get(dag_run=mapped_run, task_id="add", map_index=2).state == "none"
        assert TaskInstance.objects.get(dag_run=mapped_run, task_id="add", map_index=0).state == "success"


    def test_it_clears_a_whole_run_expanding_its_mapped_task_again(self, api: Callable[[str | None], ApiClient],
                                                                   mapped_run: DagRun) -> None:
        DagRun.objects.filter(pk=mapped_run.pk).update(state="failed")
        response = api("Operator").post(f"{RUNS}/r1/clear", {"dry_run": False}, content_type=JSON)
        assert response.json()["state"] == "running"
        # The mapped task gets a placeholder, to be expanded from its inputs again; the indexes it
        # had are reset (their tries kept), and the expansion reuses those it finds again.
        assert list(TaskInstance.objects.filter(dag_run=mapped_run, state="none").order_by("task_id", "map_index")
                    .values_list("task_id", "map_index")) == [("add", -1), ("add", 0), ("add", 1), ("add", 2), ("add", 3),
                                                              ("add", 4), ("total", -1)]


class WaitTests:
    def test_it_answers_a_finished_runs_state_and_results_at_once(self, api: Callable[[str | None], ApiClient],
                                                                  mapped_run: DagRun) -> None:
        DagRun.objects.filter(pk=mapped_run.pk).update(state="success")
        viewer = api("Viewer")
        assert viewer.get(f"{RUNS}/r1/wait", {"interval": 0.1, "result": "add"}).json() == {"state": "success", "results": {"add": [12]}}
        stream = viewer.get(f"{RUNS}/r1/wait", {"interval": 0.1}, headers={"Accept": "application/x-ndjson"})
        assert stream["Content-Type"] == "application/x-ndjson"
        assert [json.loads(line) for line in b"".join(stream.streaming_content).splitlines()] == [{"state": "success"}]
