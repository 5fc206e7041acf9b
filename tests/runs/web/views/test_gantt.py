"""The Gantt chart of a run (issue 12, point 9): one bar per task, a mapped task spanning its instances."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import DagRun, TaskInstance

GANTT = "/dags/view_add/runs/{run_id}/gantt/"


def _timed_run(make_run: Callable[..., DagRun], expand_task: Callable[..., None], n: int) -> DagRun:
    run = make_run()
    expand_task(run, "add", n, state="success")
    t0 = timezone.now() - timedelta(minutes=10)
    for i in range(min(n, 5)):
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=i).update(
            queued_at=t0 + timedelta(seconds=i), start_date=t0 + timedelta(seconds=10 + i), end_date=t0 + timedelta(seconds=20 + 2 * i))
    TaskInstance.objects.filter(dag_run=run, task_id="add", map_index__gte=5).update(queued_at=t0, start_date=t0 + timedelta(seconds=12),
                                                                                     end_date=t0 + timedelta(seconds=15))
    TaskInstance.objects.filter(dag_run=run, task_id="total").update(state="running", queued_at=t0 + timedelta(seconds=30),
                                                                     start_date=t0 + timedelta(seconds=31))
    return run


class GanttTests:
    def test_it_draws_a_bar_per_task_with_a_mapped_task_spanning_its_instances(
        self, viewer_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        run = _timed_run(make_run, expand_task, 5)
        body = viewer_client.get(GANTT.format(run_id=run.run_id)).content.decode()
        assert "<svg" in body and "<script" not in body.split("<svg")[1]
        add = body.split('id="gantt-add"')[1].split("</g>")[0]
        assert "add [5]" in add and 'class="queued"' in add and "state-success" in body.split('id="gantt-add"')[0][-80:]
        # The mapped bar spans its first start (+10 s) to its last end (+28 s); the queued part starts at +0 s.
        assert re.search(r'class="queued" x="260\.00"', add)
        total = body.split('id="gantt-total"')[1].split("</g>")[0]
        assert 'class="run running"' in total
        assert 'id="gantt-add-0"' not in body, "instances only when the task is opened"

    def test_it_opens_a_mapped_task_into_its_instances_a_page_at_a_time(
        self, viewer_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        run = _timed_run(make_run, expand_task, 120)
        body = viewer_client.get(GANTT.format(run_id=run.run_id), {"expand": "add"}).content.decode()
        assert body.count('class="gantt-row state-success instance') == 50
        assert 'id="gantt-add-0"' in body and "instances page 1 of 3" in body
        body = viewer_client.get(GANTT.format(run_id=run.run_id), {"expand": "add", "page": "3"}).content.decode()
        assert body.count("gantt-row state-success instance") == 20
        assert viewer_client.get(GANTT.format(run_id=run.run_id), {"expand": "<nope>", "page": "x"}).status_code == 200

    def test_it_makes_the_same_number_of_queries_for_3_and_300_instances(
        self, viewer_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        counts = []
        for n in (3, 300):
            run = _timed_run(make_run, expand_task, n)
            for query in ({}, {"expand": "add"}):
                with CaptureQueriesContext(connection) as ctx:
                    assert viewer_client.get(GANTT.format(run_id=run.run_id), query).status_code == 200
                counts.append(len(ctx.captured_queries))
        assert counts[:2] == counts[2:]

    def test_it_says_so_before_anything_started(self, viewer_client: Client, make_run: Callable[..., DagRun]) -> None:
        run = make_run()
        assert 'id="gantt-empty"' in viewer_client.get(GANTT.format(run_id=run.run_id)).content.decode()


class FrozenGanttTests:
    def test_it_draws_a_finished_run_from_its_frozen_summary_as_from_its_instances(
        self, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        from runs import summaries
        from runs.web import gantt
        from runs.web.queries import aggregate_state

        run = _timed_run(make_run, expand_task, 30)
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=3).update(state="failed")
        TaskInstance.objects.filter(dag_run=run, task_id="total").update(state="upstream_failed", end_date=timezone.now())
        DagRun.objects.filter(pk=run.pk).update(state="failed", end_date=timezone.now())
        run.refresh_from_db()
        live = gantt.task_timings(run, aggregate=aggregate_state)
        summaries.freeze(run.pk, summaries.aggregate([run.pk])[run.pk])
        run.refresh_from_db()
        with CaptureQueriesContext(connection) as ctx:
            frozen = gantt.task_timings(run, aggregate=aggregate_state)
        assert not ctx.captured_queries
        assert frozen == live and frozen["add"].count == 30 and frozen["add"].state == "failed"
