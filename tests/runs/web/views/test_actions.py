"""Operator actions: clear one instance, clear and re-expand, mark one or a selection."""

from __future__ import annotations

from django.test import Client

from runs.models import DagRun, TaskInstance


def _base(run: DagRun) -> str:
    return f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/add"


def _states(run: DagRun) -> dict[int, tuple[str, int]]:
    rows = TaskInstance.objects.filter(dag_run=run, task_id="add").values_list("map_index", "state", "try_number")
    return {i: (s, t) for i, s, t in rows}


class ClearInstanceTests:
    def test_it_clears_one_index_and_leaves_its_siblings(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.post(f"{_base(run)}/mapped/1/clear/")
        assert response.status_code == 302
        assert response["Location"].endswith("/tasks/add/mapped/1/")
        assert _states(run) == {0: ("success", 1), 1: ("none", 1), 2: ("running", 1)}
        assert "Cleared 1: add [1]." in operator_client.get(response["Location"]).content.decode()

    def test_it_answers_htmx_with_the_panel_and_a_grid_refresh(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.post(f"{_base(run)}/mapped/0/clear/", {"downstream": "on"}, HTTP_HX_REQUEST="true")
        body = response.content.decode()
        assert response.status_code == 200
        assert body.lstrip().startswith('<div id="instance-panel"')
        assert 'hx-swap-oob="true"' in body and "Cleared 2: add [0], total." in body
        assert "runs-changed" in response["HX-Trigger"]
        assert _states(run)[0] == ("none", 1)
        assert TaskInstance.objects.get(dag_run=run, task_id="total").state == "none"


class MarkTests:
    def test_it_marks_one_instance(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.post(f"{_base(run)}/mapped/2/mark/", {"state": "failed"}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert _states(run)[2] == ("failed", 1)
        assert _states(run)[0] == ("success", 1)

    def test_it_refuses_other_states(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.post(f"{_base(run)}/mapped/2/mark/", {"state": "running"}).status_code == 400
        assert _states(run)[2] == ("running", 1)

    def test_it_marks_a_selection(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.post(f"{_base(run)}/selection/", {"action": "failed", "map_index": ["0", "2"]}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert response.content.decode().lstrip().startswith('<div id="task-panel"')
        assert _states(run) == {0: ("failed", 1), 1: ("success", 1), 2: ("failed", 1)}

    def test_it_clears_a_selection(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.post(f"{_base(run)}/selection/", {"action": "clear", "map_index": ["1"]})
        assert response.status_code == 302
        assert _states(run)[1] == ("none", 1)

    def test_it_rejects_a_bad_selection(self, operator_client: Client, run: DagRun) -> None:
        for data in ({"action": "delete", "map_index": ["1"]}, {"action": "success", "map_index": ["x"]}, {"action": "success", "map_index": ["-1"]}):
            assert operator_client.post(f"{_base(run)}/selection/", data).status_code == 400
        assert _states(run)[1] == ("success", 1)

    def test_it_rejects_indexes_that_are_digits_only_to_unicode(self, operator_client: Client, run: DagRun) -> None:
        # str.isdigit() is true of these, int() refuses the first two and reads the others.
        for index in ("²", "1²", "١", "１", " 1", "1\n", "1_0", "0" * 10):
            response = operator_client.post(f"{_base(run)}/selection/", {"action": "success", "map_index": ["1", index]})
            assert response.status_code == 400, index
        assert _states(run)[1] == ("success", 1)


class ReexpandTests:
    def test_it_clears_all_instances_for_a_new_expansion(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.post(f"{_base(run)}/clear/", HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        states = _states(run)
        assert states[-1][0] == "none"  # the placeholder that makes the scheduler expand again
        assert {s for i, (s, _) in states.items() if i >= 0} == {"none"}
        assert "add [ ]" in operator_client.get("/dags/view_add/grid/").content.decode()

    def test_it_refuses_an_unmapped_task(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.post(f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/total/clear/").status_code == 400


class ClearOnlyNewChangedAndFailedTests:
    def test_it_asks_for_a_reexpansion_that_keeps_unchanged_successes(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.post(f"{_base(run)}/clear-changed/", {"downstream": "on"}, HTTP_HX_REQUEST="true")
        body = response.content.decode()
        assert response.status_code == 200
        assert body.lstrip().startswith('<div id="task-panel"')
        assert "only its new, changed and failed items run again" in body
        assert "runs-changed" in response["HX-Trigger"]
        placeholder = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=-1)
        assert placeholder.state == "none" and placeholder.keep_unchanged
        # Successes wait for the expansion to know which items changed; the rest runs again anyway.
        assert {i: s for i, s in _states(run).items() if i >= 0} == {0: ("success", 1), 1: ("success", 1), 2: ("none", 1)}
        assert TaskInstance.objects.get(dag_run=run, task_id="total").state == "none"

    def test_it_redirects_a_plain_post_to_the_grid(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.post(f"{_base(run)}/clear-changed/")
        assert response.status_code == 302
        assert "task_id=add" in response["Location"]

    def test_it_refuses_an_unmapped_task(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.post(f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/total/clear-changed/").status_code == 400

    def test_it_is_for_operators_only(self, viewer_client: Client, run: DagRun) -> None:
        assert viewer_client.post(f"{_base(run)}/clear-changed/").status_code == 403
        assert viewer_client.post(f"{_base(run)}/clear-changed/", HTTP_HX_REQUEST="true").status_code == 403
        assert not TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=-1).exists()

    def test_it_needs_the_csrf_token(self, operator_client: Client, run: DagRun) -> None:
        operator_client.handler.enforce_csrf_checks = True
        assert operator_client.post(f"{_base(run)}/clear-changed/").status_code == 403
        assert not TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=-1).exists()

    def test_it_is_offered_in_the_mapped_panel_with_the_last_reexpansions_summary(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=0).update(item_change="unchanged")
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(item_change="changed")
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=2).update(item_change="new")
        body = operator_client.get(f"{_base(run)}/", HTTP_HX_REQUEST="true").content.decode()
        assert "Re-expanded: 1 unchanged, 1 new, 1 changed, 0 removed" in body
        assert 'id="clear-mapped-changed"' in body
        assert "action=clear_changed" in body

    def test_it_shows_no_summary_before_a_reexpansion(self, viewer_client: Client, run: DagRun) -> None:
        body = viewer_client.get(f"{_base(run)}/", HTTP_HX_REQUEST="true").content.decode()
        assert "Re-expanded" not in body
        assert "clear-mapped-changed" not in body
