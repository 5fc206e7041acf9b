"""Task instances: listMapped, one by map_index, tries, marking, clearing, logs (runs/web/api_v2/task_instances.py)."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.models import DagRun, TaskInstance
from runs.services import clear_task_instances
from tests.runs.web.api_v2.conftest import ApiClient

JSON = "application/json"
RUN = "/api/v2/dags/api_add/dagRuns/r1"
MAPPED = f"{RUN}/taskInstances/add/listMapped"

pytestmark = pytest.mark.django_db


def indexes(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return [t["map_index"] for t in response.json()["task_instances"]]


class ListMappedTests:
    def test_it_lists_a_mapped_tasks_instances_with_airflows_fields_and_ours(self, api: Callable[[str | None], ApiClient],
                                                                             mapped_run: DagRun) -> None:
        body = api("Viewer").get(MAPPED).json()
        assert body["total_entries"] == 5
        first = body["task_instances"][0]
        assert {k: first[k] for k in ("task_id", "dag_id", "dag_run_id", "map_index", "state", "try_number", "rendered_map_index",
                                      "duration", "item_identity", "map_path")} == {
            "task_id": "add", "dag_id": "api_add", "dag_run_id": "r1", "map_index": 0, "state": "success", "try_number": 1,
            "rendered_map_index": "1", "duration": 3.0, "item_identity": "id-0", "map_path": None}
        assert first["dag_version"]["version_number"] == 1

    def test_it_filters_by_state_and_duration_and_orders_by_duration_descending(self, api: Callable[[str | None], ApiClient],
                                                                                mapped_run: DagRun) -> None:
        viewer = api("Viewer")
        assert indexes(viewer.get(MAPPED, {"state": "success", "order_by": "-duration"})) == [0, 4, 1]
        assert indexes(viewer.get(MAPPED, {"state": ["success", "failed"], "order_by": "-duration"})) == [2, 0, 4, 1]
        assert indexes(viewer.get(MAPPED, {"duration_gte": 2, "duration_lt": 5})) == [0, 4]
        # As Airflow sorts on PostgreSQL: no duration (still running) last ascending, first descending.
        assert indexes(viewer.get(MAPPED, {"order_by": "duration"})) == [1, 4, 0, 2, 3]
        assert indexes(viewer.get(MAPPED, {"order_by": "-duration"})) == [3, 2, 0, 4, 1]
        assert indexes(viewer.get(MAPPED, {"rendered_map_index_pattern": "4"})) == [3]

    def test_it_pages_with_limit_and_offset_and_counts_every_match(self, api: Callable[[str | None], ApiClient],
                                                                   mapped_run: DagRun) -> None:
        response = api("Viewer").get(MAPPED, {"limit": 2, "offset": 2})
        assert indexes(response) == [2, 3]
        assert response.json()["total_entries"] == 5

    def test_it_reads_a_page_in_the_same_number_of_queries_whatever_the_number_of_instances(
            self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        viewer = api("Viewer")
        with CaptureQueriesContext(connection) as small:
            viewer.get(MAPPED)
        TaskInstance.objects.bulk_create([TaskInstance(dag_run=mapped_run, task_id="add", map_index=i, state="success", try_number=1)
                                          for i in range(5, 300)])
        with CaptureQueriesContext(connection) as large:
            assert len(viewer.get(MAPPED).json()["task_instances"]) == 50
        assert len(large) == len(small)

    def test_it_answers_400_for_an_unknown_order_and_422_for_a_bad_limit(self, api: Callable[[str | None], ApiClient],
                                                                         mapped_run: DagRun) -> None:
        viewer = api("Viewer")
        bad_order = viewer.get(MAPPED, {"order_by": "password"})
        assert bad_order.status_code == 400
        assert bad_order.json() == {"detail": "Ordering with 'password' is disallowed or the attribute does not exist on the model"}
        bad_limit = viewer.get(MAPPED, {"limit": -1})
        assert bad_limit.status_code == 422
        assert bad_limit.json()["detail"][0]["loc"][-1] == "limit"

    def test_it_answers_404_in_json_for_an_unmapped_task_or_a_missing_run(self, api: Callable[[str | None], ApiClient],
                                                                          mapped_run: DagRun) -> None:
        viewer = api("Viewer")
        assert viewer.get(f"{RUN}/taskInstances/total/listMapped").json() == {"detail": "Task id total is not mapped"}
        missing = viewer.get("/api/v2/dags/api_add/dagRuns/nope/taskInstances/add/listMapped")
        assert missing.status_code == 404
        assert "nope" in missing.json()["detail"]


class OneInstanceTests:
    def test_it_reads_one_instance_by_map_index_and_refuses_a_mapped_task_without_one(
            self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        viewer = api("Viewer")
        one = viewer.get(f"{RUN}/taskInstances/add/2").json()
        assert (one["map_index"], one["state"], one["duration"]) == (2, "failed", 5.0)
        assert viewer.get(f"{RUN}/taskInstances/add").json() == {"detail": "Task instance is mapped, add the map_index value to the URL"}
        total = viewer.get(f"{RUN}/taskInstances/total").json()
        assert (total["map_index"], total["state"]) == (-1, None)  # "no status" is null, as in Airflow
        assert viewer.get(f"{RUN}/taskInstances/add/99").status_code == 404

    def test_it_lists_the_tries_of_an_index_kept_when_a_clear_superseded_them(
            self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=mapped_run, task_id="add", map_index=2).update(hostname="host-a")
        clear_task_instances(dag_run=mapped_run, task_id="add", map_indexes=[2])
        # The second try, as a worker's claim would start it on another host.
        TaskInstance.objects.filter(dag_run=mapped_run, task_id="add", map_index=2).update(
            try_number=2, state="running", hostname="host-b")
        tries = api("Viewer").get(f"{RUN}/taskInstances/add/2/tries").json()
        assert [(t["try_number"], t["state"], t["hostname"], t["duration"]) for t in tries["task_instances"]] == [
            (1, "failed", "host-a", 5.0), (2, "running", "host-b", None)]
        one = api("Viewer").get(f"{RUN}/taskInstances/add/2/tries/1").json()
        assert (one["try_number"], one["state"]) == (1, "failed")
        assert api("Viewer").get(f"{RUN}/taskInstances/add/2/tries/3").status_code == 404

    def test_it_lists_a_try_from_before_tries_were_kept_by_its_log(self, api: Callable[[str | None], ApiClient],
                                                                   mapped_run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=mapped_run, task_id="add", map_index=1).update(try_number=2)
        tries = api("Viewer").get(f"{RUN}/taskInstances/add/1/tries").json()
        assert [(t["try_number"], t["state"]) for t in tries["task_instances"]] == [(1, None), (2, "success")]
        assert tries["task_instances"][0]["start_date"] is not None  # its first log line

    def test_it_lists_the_instances_of_a_run(self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        response = api("Viewer").get(f"{RUN}/taskInstances", {"state": "failed"})
        assert [(t["task_id"], t["map_index"]) for t in response.json()["task_instances"]] == [("add", 2)]
        every = api("Viewer").get("/api/v2/dags/~/dagRuns/~/taskInstances", {"task_id": "total"}).json()
        assert [t["task_id"] for t in every["task_instances"]] == ["total"]


class PatchTests:
    def test_it_marks_one_index_and_a_dry_run_changes_nothing(self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        operator = api("Operator")
        dry = operator.patch(f"{RUN}/taskInstances/add/2/dry_run", {"new_state": "success"}, content_type=JSON)
        assert [(t["map_index"], t["state"]) for t in dry.json()["task_instances"]] == [(2, "failed")]
        assert TaskInstance.objects.get(dag_run=mapped_run, task_id="add", map_index=2).state == "failed"
        done = operator.patch(f"{RUN}/taskInstances/add/2", {"new_state": "success"}, content_type=JSON)
        assert [(t["map_index"], t["state"]) for t in done.json()["task_instances"]] == [(2, "success")]
        states = dict(TaskInstance.objects.filter(dag_run=mapped_run, task_id="add").values_list("map_index", "state"))
        assert states == {0: "success", 1: "success", 2: "success", 3: "running", 4: "success"}


class ClearTests:
    def url(self) -> str:
        return "/api/v2/dags/api_add/clearTaskInstances"

    def test_it_clears_the_indexes_given_as_pairs_and_leaves_their_siblings(self, api: Callable[[str | None], ApiClient],
                                                                           mapped_run: DagRun) -> None:
        body = {"dag_run_id": "r1", "task_ids": [["add", 0], ["add", 4]], "only_failed": False, "dry_run": False}
        response = api("Operator").post(self.url(), body, content_type=JSON)
        assert [t["map_index"] for t in response.json()["task_instances"]] == [0, 4]
        states = dict(TaskInstance.objects.filter(dag_run=mapped_run, task_id="add").values_list("map_index", "state"))
        assert states == {0: "none", 1: "success", 2: "failed", 3: "running", 4: "none"}

    def test_it_clears_only_failed_instances_by_default_and_downstream_on_request(
            self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=mapped_run, task_id="total").update(state="upstream_failed")
        body = {"dag_run_id": "r1", "task_ids": ["add"], "include_downstream": True, "dry_run": False}
        response = api("Operator").post(self.url(), body, content_type=JSON)
        assert [(t["task_id"], t["map_index"], t["state"]) for t in response.json()["task_instances"]] == [
            ("add", 2, "failed"), ("total", -1, "upstream_failed")]
        assert TaskInstance.objects.get(dag_run=mapped_run, task_id="add", map_index=2).state == "none"
        assert TaskInstance.objects.get(dag_run=mapped_run, task_id="add", map_index=0).state == "success"

    def test_it_lists_what_a_clear_would_do_without_doing_it_by_default(self, api: Callable[[str | None], ApiClient],
                                                                       mapped_run: DagRun) -> None:
        body = {"dag_run_id": "r1", "task_ids": ["add"], "only_failed": False}
        response = api("Operator").post(self.url(), body, content_type=JSON)
        assert response.json()["total_entries"] == 5
        assert TaskInstance.objects.filter(dag_run=mapped_run, state="none").count() == 1  # total only
        mapped_run.refresh_from_db()
        assert mapped_run.state == "running"

    def test_it_refuses_a_task_that_is_not_in_the_dag(self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        response = api("Operator").post(self.url(), {"dag_run_id": "r1", "task_ids": ["nope"], "dry_run": False}, content_type=JSON)
        assert response.status_code == 400
        assert response.json() == {"detail": "Task 'nope' is not in DAG 'api_add'"}


class LogTests:
    def test_it_reads_a_try_log_as_json_lines_or_text(self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        viewer = api("Viewer")
        url = f"{RUN}/taskInstances/add/logs/1"
        assert viewer.get(url, {"map_index": 1}).json() == {
            "content": [{"timestamp": None, "event": "adding 2 + 10"}, {"timestamp": None, "event": "returned 12"}],
            "continuation_token": None}
        text = viewer.get(url, {"map_index": 1}, headers={"Accept": "text/plain"})
        assert text["Content-Type"].startswith("text/plain")
        assert text.content == b"adding 2 + 10\nreturned 12\n"
        assert viewer.get(f"{RUN}/taskInstances/add/logs/2", {"map_index": 1}).status_code == 404
