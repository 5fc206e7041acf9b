"""The read-only JSON API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

from django.test import Client

from runs.models import DagRun, TaskInstance, TaskInstanceLog


def _api(run: DagRun, suffix: str = "") -> str:
    return f"/api/dags/{run.dag_id}/runs/{run.run_id}/tasks/add/mapped{suffix}"


class ApiTests:
    def test_it_lists_mapped_instances(self, operator_client: Client, run: DagRun) -> None:
        data = operator_client.get(_api(run), {"order_by": "-map_index"}).json()
        assert data["total"] == 3 and data["page"] == 1 and data["pages"] == 1
        assert [i["map_index"] for i in data["instances"]] == [2, 1, 0]
        assert set(data["instances"][0]) == {"map_index", "rendered_map_index", "state", "try_number", "start_date", "end_date", "duration",
                                             "map_path", "item_identity", "item_change"}
        assert data["item_changes"] is None  # never re-expanded
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
            assert response["Content-Type"] == "application/json" and response.json()["detail"]

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
        response = client.get(_api(run))
        assert response.status_code == 401 and response.json() == {"detail": "authentication required"}

    def test_it_is_read_only(self, operator_client: Client, run: DagRun) -> None:
        for method in (operator_client.post, operator_client.put, operator_client.delete):
            response = method(_api(run))
            assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
            assert "read-only" in response.json()["detail"]


class ApiErrorTests:
    """JSON endpoints answer errors in JSON: {"detail": ...}, never an HTML page."""

    def test_it_answers_404s_in_json(self, operator_client: Client, run: DagRun) -> None:
        for url, detail in [
            (_api(run, "/99"), "No instance add[99]"),
            (f"/api/dags/{run.dag_id}/runs/nope/tasks/add/mapped", "No run 'nope'"),
            (f"/api/dags/{run.dag_id}/runs/{run.run_id}/tasks/nope/mapped", "No task 'nope'"),
            (_api(run, "/-5"), "Not Found"),  # matches no URL pattern
            ("/api/nothing/here", "Not Found"),
        ]:
            response = operator_client.get(url)
            assert response.status_code == 404, url
            assert response["Content-Type"] == "application/json", url
            assert detail in response.json()["detail"], (url, response.json())

    def test_it_answers_500s_in_json_without_internals(self, run: DagRun, django_user_model: Any) -> None:
        client = Client(raise_request_exception=False)
        client.force_login(django_user_model.objects.create_superuser("root", password="pw-root-123-long"))
        with mock.patch("runs.web.views.api.mapped_instances_page", side_effect=RuntimeError("secret internals")):
            response = client.get(_api(run))
        assert response.status_code == 500
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Internal Server Error"}

    def test_it_refuses_a_doubled_minus_in_order_by(self, operator_client: Client, run: DagRun) -> None:
        for bad in ("--map_index", "---state", "-", "--"):
            response = operator_client.get(_api(run), {"order_by": bad})
            assert response.status_code == 400, bad
            assert "order_by must be one of" in response.json()["detail"]

    def test_it_answers_404_for_a_try_that_does_not_exist(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.get(_api(run, "/1/logs/1")).status_code == 200  # try 1 ran
        for try_number in (0, 2, 99):
            response = operator_client.get(_api(run, f"/1/logs/{try_number}"))
            assert response.status_code == 404, try_number
            assert f"No try {try_number} of add[1]" in response.json()["detail"]

    def test_it_answers_a_nul_in_json(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.get(_api(run), {"q": "a\x00"})
        assert response.status_code == 400 and "NUL" in response.json()["detail"]

    def test_it_answers_head_like_get(self, operator_client: Client, run: DagRun) -> None:
        for suffix in ("", "/1", "/1/logs/1"):
            response = operator_client.head(_api(run, suffix))
            assert response.status_code == 200 and response["Content-Type"] == "application/json", suffix
            assert response.content == b""
