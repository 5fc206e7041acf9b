"""The mapped panel says why a task did not expand, in plain words, with a link to the full log (issue 12, point 2)."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from runs.logs import log_line
from runs.models import DagRun, TaskInstance

PANEL = "/dags/view_add/runs/{run_id}/tasks/add/"


def _placeholder(run: DagRun, state: str, log: str | None = None) -> TaskInstance:
    ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=-1)
    TaskInstance.objects.filter(pk=ti.pk).update(state=state, try_number=1)
    if log:
        log_line(ti.pk, 1, log)
    return ti


class ExpansionOutcomeTests:
    def test_it_shows_a_failed_expansion_and_its_reason_with_a_link_to_the_log(
        self, operator_client: Client, make_run: Callable[..., DagRun],
    ) -> None:
        run = make_run()
        _placeholder(run, "failed", "ERROR - Cannot expand mapped task 'add': the input has 2000 items, more than MAX_MAP_LENGTH (1024)")
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            body = operator_client.get(PANEL.format(run_id=run.run_id), **headers).content.decode()
            assert 'id="expansion-outcome"' in body
            assert "Not expanded yet" not in body and "no status" not in body.split('id="mapped-summary"')[1].split("</div>")[0]
            assert "state-failed" in body.split('id="task-panel"')[1].split("</h2>")[0]
            assert "Cannot expand mapped task &#x27;add&#x27;: the input has 2000 items, more than MAX_MAP_LENGTH (1024)" in body
            assert f'href="/dags/view_add/runs/{run.run_id}/tasks/add/mapped/-1/?tab=log"' in body

    def test_it_says_an_empty_expansion_was_skipped_because_there_was_nothing_to_map(
        self, operator_client: Client, make_run: Callable[..., DagRun],
    ) -> None:
        run = make_run()
        _placeholder(run, "skipped")
        body = operator_client.get(PANEL.format(run_id=run.run_id), HTTP_HX_REQUEST="true").content.decode()
        head = body.split("</h2>")[0]
        assert "state-skipped" in head and ">skipped<" in head
        assert "Its input had no items: there was nothing to map over." in body
        assert "/tasks/add/mapped/-1/?tab=log" in body

    def test_it_says_the_task_is_expanding_again_while_a_cleared_task_waits_for_its_inputs(
        self, operator_client: Client, run: DagRun,
    ) -> None:
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state="none")
        body = operator_client.get(PANEL.format(run_id=run.run_id), HTTP_HX_REQUEST="true").content.decode()
        assert "Expanding again from its current inputs" in body

    def test_it_escapes_the_reason(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        run = make_run()
        _placeholder(run, "failed", "ERROR - Cannot expand mapped task 'add': <script>alert(1)</script>")
        body = operator_client.get(PANEL.format(run_id=run.run_id), HTTP_HX_REQUEST="true").content.decode()
        assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
