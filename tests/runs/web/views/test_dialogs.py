"""Clear and mark dialogs: server-rendered, naming what the action touches before it is done (issue 12, point 6)."""

from __future__ import annotations

from django.test import Client

from runs.models import DagRun, TaskInstance


def _dialog(client: Client, run: DagRun, task_id: str = "add", **query: object) -> str:
    response = client.get(f"/dags/view_add/runs/{run.run_id}/tasks/{task_id}/action/", query, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content
    return response.content.decode()


def _states(run: DagRun) -> dict[int, str]:
    return dict(TaskInstance.objects.filter(dag_run=run, task_id="add").values_list("map_index", "state"))


class ClearDialogTests:
    def test_it_lists_what_clearing_an_instance_with_downstream_will_touch(self, operator_client: Client, run: DagRun) -> None:
        body = _dialog(operator_client, run, action="clear", map_index=1, instance="1", downstream="on")
        assert "<dialog" in body and "Clear add [1]" in body
        assert "2 instances will be cleared and run again." in body
        assert "<li>add [1]: 1 instance</li>" in body and "<li>total: 1 instance</li>" in body
        assert 'id="option-downstream" checked' in body and 'id="option-upstream"' in body and 'id="option-only_failed"' in body
        assert f'hx-post="/dags/view_add/runs/{run.run_id}/tasks/add/mapped/1/clear/"' in body.replace("?tab=&amp;try=", "")
        assert _states(run) == {0: "success", 1: "success", 2: "running"}, "a GET changes nothing"

    def test_it_says_a_whole_mapped_task_expands_again(self, operator_client: Client, run: DagRun) -> None:
        body = _dialog(operator_client, run, action="clear")
        assert "3 instances will be cleared" in body
        assert "add [all, expanded again]: 3 instances (expands again from its current inputs)" in body

    def test_it_takes_upstream_and_only_failed_as_airflow_does(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(state="failed")
        body = _dialog(operator_client, run, task_id="total", action="clear", upstream="on", only_failed="on")
        assert "1 instance will be cleared" in body and "add: 1 instance" in body

    def test_it_refuses_a_viewer_and_a_bad_request(self, viewer_client: Client, operator_client: Client, run: DagRun) -> None:
        url = f"/dags/view_add/runs/{run.run_id}/tasks/add/action/"
        assert viewer_client.get(url, {"action": "clear"}).status_code == 403
        assert operator_client.get(url, {"action": "drop"}).status_code == 400
        assert operator_client.get(url, {"action": "success"}).status_code == 400
        assert operator_client.get(url, {"action": "clear", "map_index": "x"}).status_code == 400

    def test_it_is_a_page_of_its_own_without_javascript(self, operator_client: Client, run: DagRun) -> None:
        body = operator_client.get(f"/dags/view_add/runs/{run.run_id}/tasks/add/action/", {"action": "clear"}).content.decode()
        assert "<html" in body and "<dialog" in body and " open" in body.split("<dialog")[1].split(">")[0]


class SelectionDialogTests:
    def test_it_names_the_selected_instances_and_what_a_mark_changes(self, operator_client: Client, run: DagRun) -> None:
        body = _dialog(operator_client, run, action="success", map_index=[0, 2])
        assert "Mark 2 selected instances of add success" in body
        assert "1 instance will be marked success (the others already are)." in body
        assert "add [2] x=3 (running)" in body
        assert '<input type="hidden" name="map_index" value="0">' in body and '<input type="hidden" name="action" value="success">' in body

    def test_it_says_what_a_bulk_clear_changed(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.post(f"/dags/view_add/runs/{run.run_id}/tasks/add/selection/",
                                        {"action": "clear", "map_index": ["0", "2"], "downstream": "on"}, HTTP_HX_REQUEST="true")
        assert "Cleared 3: add [0, 2], total." in response.content.decode()
        assert _states(run) == {0: "none", 1: "success", 2: "none"}

    def test_it_offers_bulk_actions_that_wait_for_a_selection_and_no_confirm(self, operator_client: Client, run: DagRun) -> None:
        body = operator_client.get(f"/dags/view_add/runs/{run.run_id}/tasks/add/", HTTP_HX_REQUEST="true").content.decode()
        assert body.count("data-needs-selection") == 3 and "data-selection-count" in body
        assert 'hx-include="#mapped-instances input.sel:checked"' in body
        assert "hx-confirm" not in body
        instance = operator_client.get(f"/dags/view_add/runs/{run.run_id}/tasks/add/mapped/1/", HTTP_HX_REQUEST="true").content.decode()
        assert "hx-confirm" not in instance and 'id="clear-instance"' in instance


class DialogTargetTests:
    def test_it_asks_clear_changed_for_the_whole_task_whatever_the_selection(self, operator_client: Client, run: DagRun) -> None:
        body = _dialog(operator_client, run, action="clear_changed", map_index=1, instance="1")
        assert f'hx-post="/dags/view_add/runs/{run.run_id}/tasks/add/clear-changed/"' in body
        assert 'name="state"' not in body and 'name="map_index"' not in body
