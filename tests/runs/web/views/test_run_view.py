"""The run view: a run's details, its instances by state, and the Operator's run actions (issue 12, point 5)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import DagRun, TaskInstance
from tests.conftest import make_user

RUN = "/dags/view_add/runs/{run_id}/"


def _finished(make_run: Callable[..., DagRun], expand_task: Callable[..., None], n: int, *, failed: tuple[int, ...] = ()) -> DagRun:
    run = make_run()
    expand_task(run, "add", n, state="success")
    TaskInstance.objects.filter(dag_run=run, task_id="add", map_index__in=failed).update(state="failed")
    TaskInstance.objects.filter(dag_run=run, task_id="total").update(state="upstream_failed" if failed else "success")
    DagRun.objects.filter(pk=run.pk).update(state="failed" if failed else "success")
    run.refresh_from_db()
    return run


class RunPanelTests:
    def test_it_shows_the_run_when_its_bar_is_clicked(self, operator_client: Client, run: DagRun) -> None:
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            body = operator_client.get("/dags/view_add/grid/", {"run_id": run.run_id}, **headers).content.decode()
            panel = body.split('id="run-panel"')[1]
            for text in (run.run_id, "manual", "Logical date", "DAG version", "v1", "latest", "2 success", "1 running"):
                assert text in panel, text

    def test_it_is_its_own_address_too(self, operator_client: Client, run: DagRun) -> None:
        page = operator_client.get(RUN.format(run_id=run.run_id)).content.decode()
        assert "<html" in page and 'id="run-panel"' in page and 'id="grid-body"' in page
        fragment = operator_client.get(RUN.format(run_id=run.run_id), HTTP_HX_REQUEST="true").content.decode()
        assert "<html" not in fragment and fragment.strip().startswith('<div id="run-panel"')

    def test_it_offers_run_actions_to_operators_only(self, operator_client: Client, viewer_client: Client, run: DagRun) -> None:
        assert 'id="run-clear"' in operator_client.get(RUN.format(run_id=run.run_id), HTTP_HX_REQUEST="true").content.decode()
        assert 'id="run-actions"' not in viewer_client.get(RUN.format(run_id=run.run_id), HTTP_HX_REQUEST="true").content.decode()

    def test_it_makes_the_same_number_of_queries_for_3_and_300_instances(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None], django_assert_num_queries: Any,
    ) -> None:
        counts = []
        for n in (3, 300):
            run = make_run()
            DagRun.objects.filter(pk=run.pk).update(state="running")
            expand_task(run, "add", n, state="success")
            with CaptureQueriesContext(connection) as ctx:
                assert operator_client.get(RUN.format(run_id=run.run_id), HTTP_HX_REQUEST="true").status_code == 200
            counts.append(len(ctx.captured_queries))
        assert counts[0] == counts[1]
        with django_assert_num_queries(counts[1]):
            operator_client.get(RUN.format(run_id=run.run_id), HTTP_HX_REQUEST="true")


class RunActionTests:
    def test_it_lists_what_clearing_only_failed_will_touch_before_doing_it(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        run = _finished(make_run, expand_task, 5, failed=(1, 3))
        body = operator_client.get(RUN.format(run_id=run.run_id) + "action/", {"action": "clear", "only_failed": "on"},
                                   HTTP_HX_REQUEST="true").content.decode()
        assert "3 task instances will be cleared and run again (only failed and upstream failed)." in body
        assert "add: 2 failed" in body and "total: 1 upstream failed" in body
        assert 'name="only_failed" id="option-only_failed" checked' in body
        assert TaskInstance.objects.filter(dag_run=run, state="failed").count() == 2, "a GET changes nothing"
        everything = operator_client.get(RUN.format(run_id=run.run_id) + "action/", {"action": "clear"}, HTTP_HX_REQUEST="true").content.decode()
        assert "6 task instances will be cleared" in everything

    def test_it_clears_only_the_failed_and_upstream_failed_instances(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        run = _finished(make_run, expand_task, 5, failed=(1, 3))
        response = operator_client.post(RUN.format(run_id=run.run_id) + "clear/", {"only_failed": "on"}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        body = response.content.decode()
        assert "Cleared 3 failed and upstream-failed task instances" in body
        assert 'id="dialog-slot" hx-swap-oob="true"' in body
        states = dict(TaskInstance.objects.filter(dag_run=run, task_id="add").values_list("map_index", "state"))
        assert states == {0: "success", 1: "none", 2: "success", 3: "none", 4: "success"}
        assert TaskInstance.objects.get(dag_run=run, task_id="total").state == "none"
        run.refresh_from_db()
        assert run.state == "running"

    def test_it_clears_the_whole_run_and_expands_mapped_tasks_again(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        run = _finished(make_run, expand_task, 5)
        operator_client.post(RUN.format(run_id=run.run_id) + "clear/")
        placeholder = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=-1)
        assert placeholder.state == "none"
        assert set(TaskInstance.objects.filter(dag_run=run).values_list("state", flat=True)) == {"none"}

    def test_it_marks_the_run_failed_failing_running_and_skipping_unfinished_instances(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(state="queued")
        operator_client.post(RUN.format(run_id=run.run_id) + "mark/", {"state": "failed"})
        states = dict(TaskInstance.objects.filter(dag_run=run, task_id="add").values_list("map_index", "state"))
        assert states == {0: "success", 1: "skipped", 2: "failed"}
        assert TaskInstance.objects.get(dag_run=run, task_id="total").state == "skipped"
        run.refresh_from_db()
        assert run.state == "failed" and run.end_date is not None

    def test_it_marks_the_run_success(self, operator_client: Client, run: DagRun) -> None:
        operator_client.post(RUN.format(run_id=run.run_id) + "mark/", {"state": "success"})
        assert set(TaskInstance.objects.filter(dag_run=run).values_list("state", flat=True)) == {"success"}
        run.refresh_from_db()
        assert run.state == "success"

    def test_a_viewer_can_neither_ask_nor_act(self, viewer_client: Client, run: DagRun) -> None:
        assert viewer_client.get(RUN.format(run_id=run.run_id) + "action/", {"action": "clear"}).status_code == 403
        assert viewer_client.post(RUN.format(run_id=run.run_id) + "clear/").status_code == 403
        assert viewer_client.post(RUN.format(run_id=run.run_id) + "mark/", {"state": "success"}).status_code == 403
        run.refresh_from_db()
        assert run.state == "running"

    def test_a_get_never_acts_and_a_post_needs_csrf(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.get(RUN.format(run_id=run.run_id) + "clear/").status_code == 405
        assert operator_client.get(RUN.format(run_id=run.run_id) + "mark/?state=success").status_code == 405
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(make_user("op2", "Operator"))
        assert strict.post(RUN.format(run_id=run.run_id) + "mark/", {"state": "success"}).status_code == 403
        run.refresh_from_db()
        assert run.state == "running"

    def test_it_refuses_an_unknown_state_or_action(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.post(RUN.format(run_id=run.run_id) + "mark/", {"state": "running"}).status_code == 400
        assert operator_client.get(RUN.format(run_id=run.run_id) + "action/", {"action": "drop"}).status_code == 400


class GridRunBarsTests:
    def test_it_draws_bars_as_tall_as_the_runs_durations_with_dates_under_them(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        short, long = make_run(), make_run()
        start = timezone.now() - timedelta(hours=1)
        DagRun.objects.filter(pk=short.pk).update(state="success", start_date=start, end_date=start + timedelta(seconds=60))
        DagRun.objects.filter(pk=long.pk).update(state="success", start_date=start, end_date=start + timedelta(seconds=600))
        body = operator_client.get("/dags/view_add/grid/").content.decode()
        assert f'id="run-{long.pk}" style="height: 36px"' in body
        assert f'id="run-{short.pk}" style="height: 9px"' in body
        assert body.count('class="run-date"') == 2 and long.logical_date.strftime("%m-%d") in body.split('class="grid-dates"')[1]

    def test_it_filters_the_runs_by_state_and_type(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        ok, bad, scheduled = make_run(), make_run(), make_run(run_type="scheduled")
        DagRun.objects.filter(pk__in=[ok.pk, scheduled.pk]).update(state="success")
        DagRun.objects.filter(pk=bad.pk).update(state="failed")
        body = operator_client.get("/dags/view_add/grid/", {"run_state": "success"}).content.decode()
        assert f'id="run-{ok.pk}"' in body and f'id="run-{scheduled.pk}"' in body and f'id="run-{bad.pk}"' not in body
        body = operator_client.get("/dags/view_add/grid/", {"run_state": "success", "run_type": "manual"}).content.decode()
        assert f'id="run-{ok.pk}"' in body and f'id="run-{scheduled.pk}"' not in body
        # The filters stay on the grid's links and on its refresh.
        assert "run_state=success" in body.split(f'id="run-{ok.pk}"')[1].split(">")[0]
        assert operator_client.get("/dags/view_add/grid/", {"run_state": "<nope>"}).status_code == 200

    def test_it_shows_a_legend_of_the_states(self, operator_client: Client, run: DagRun) -> None:
        body = operator_client.get("/dags/view_add/grid/").content.decode()
        legend = body.split('class="state-legend"')[1].split("</ul>")[0]
        for label in ("success", "failed", "upstream failed", "no status", "success, failures tolerated"):
            assert f">{label}</li>" in legend
