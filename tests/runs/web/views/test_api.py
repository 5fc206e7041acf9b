"""The read-only JSON API."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from runs.models import DagRun, TaskInstance, TaskInstanceLog


def _api(run: DagRun, suffix: str = "") -> str:
    return f"/api/dags/{run.dag_id}/runs/{run.run_id}/tasks/add/mapped{suffix}"


class ApiTests:
    def test_it_lists_mapped_instances(self, operator_client: Client, run: DagRun) -> None:
        data = operator_client.get(_api(run), {"order_by": "-map_index"}).json()
        assert data["total"] == 3 and data["page"] == 1 and data["pages"] == 1
        assert [i["map_index"] for i in data["instances"]] == [2, 1, 0]
        assert set(data["instances"][0]) == {"map_index", "rendered_map_index", "state", "try_number", "start_date", "end_date", "duration"}
        assert operator_client.get(_api(run), {"state": "running"}).json()["total"] == 1

    def test_it_paginates(self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None]) -> None:
        run = make_run()
        expand_task(run, "add", 120)
        data = operator_client.get(_api(run), {"page": 3}).json()
        assert data["pages"] == 3 and len(data["instances"]) == 20

    def test_it_answers_400_to_bad_parameters(self, operator_client: Client, run: DagRun) -> None:
        for bad in ({"order_by": "nope"}, {"state": "nope"}, {"page": "x"}, {"page": "0"}):
            response = operator_client.get(_api(run), bad)
            assert response.status_code == 400
            assert "error" in response.json()

    def test_it_searches_an_index_by_ascii_digits_only(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.get(_api(run), {"q": "1"}).json()["total"] == 2  # named x=1, and index 1
        for q in ("²", "1²", "١"):
            response = operator_client.get(_api(run), {"q": q})
            assert response.status_code == 200 and response.json()["total"] == 0, q

    def test_it_shows_one_instance_and_its_log(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=1)
        TaskInstance.objects.filter(pk=ti.pk).update(rendered_fields={"mapped_kwargs": {"x": 2}}, hostname="h1")
        TaskInstanceLog.objects.create(task_instance=ti, try_number=1, text="hello\n")
        one = operator_client.get(_api(run, "/1")).json()
        assert one["map_index"] == 1 and one["hostname"] == "h1" and one["rendered_fields"] == {"mapped_kwargs": {"x": 2}}
        assert "max_tries" in one
        assert operator_client.get(_api(run, "/1/logs/1")).json() == {"try_number": 1, "content": "hello\n"}

    def test_it_is_404_for_unknown_things(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.get(_api(run, "/99")).status_code == 404
        assert operator_client.get(f"/api/dags/{run.dag_id}/runs/nope/tasks/add/mapped").status_code == 404
        assert operator_client.get(f"/api/dags/{run.dag_id}/runs/{run.run_id}/tasks/nope/mapped").status_code == 404

    def test_it_needs_a_login(self, client: Client, run: DagRun) -> None:
        assert client.get(_api(run)).status_code == 401

    def test_it_is_read_only(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.post(_api(run)).status_code == 405
