"""Figures consistent with the state shown while things re-run (issue 12, point 4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from runs.models import DagRun, TaskInstance
from runs.services import clear_task_instances, mark_task_instances

INSTANCE = "/dags/view_add/runs/{run_id}/tasks/add/mapped/{i}/"


def _fact(body: str, name: str) -> str:
    match = re.search(rf"<dt>{name}</dt><dd>(.*?)</dd>", body, re.S)
    assert match, name
    return match.group(1).strip()


class ClearedInstanceTests:
    def test_it_shows_no_start_or_host_of_the_old_try_after_a_clear(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=0).update(hostname="worker-1", pid=4242)
        clear_task_instances(dag_run=run, task_id="add", map_indexes=[0])
        body = operator_client.get(INSTANCE.format(run_id=run.run_id, i=0), HTTP_HX_REQUEST="true").content.decode()
        assert _fact(body, "State").endswith("no status</span>")
        assert _fact(body, "Start") == "–"
        assert _fact(body, "End") == "–"
        assert _fact(body, "Duration") == "–"
        assert _fact(body, "Host") == "–"


class MarkedInstanceTests:
    def test_it_keeps_the_end_and_duration_of_a_finished_instance_marked(self, run: DagRun) -> None:
        start = timezone.now() - timedelta(minutes=10)
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=0).update(
            start_date=start, end_date=start + timedelta(seconds=5), duration=5.0)
        mark_task_instances(dag_run=run, task_id="add", map_indexes=[0], state="failed")
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        assert (ti.state, ti.end_date, ti.duration) == ("failed", start + timedelta(seconds=5), 5.0)

    def test_it_ends_a_running_instance_now_with_the_duration_so_far(self, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=2).update(start_date=timezone.now() - timedelta(seconds=30))
        mark_task_instances(dag_run=run, task_id="add", map_indexes=[2], state="success")
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=2)
        assert ti.end_date is not None and ti.start_date is not None
        assert ti.duration == (ti.end_date - ti.start_date).total_seconds()
        assert 29 < ti.duration < 40

    def test_it_gives_no_times_to_an_instance_that_never_started(self, run: DagRun) -> None:
        clear_task_instances(dag_run=run, task_id="add", map_indexes=[1])
        mark_task_instances(dag_run=run, task_id="add", map_indexes=[1], state="success")
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=1)
        assert (ti.state, ti.start_date, ti.end_date, ti.duration) == ("success", None, None, None)


class ProgressBarTests:
    def test_it_segments_the_progress_bar_by_state(self, operator_client: Client, make_run: Callable[..., DagRun],
                                                    expand_task: Callable[..., None]) -> None:
        run = make_run()
        expand_task(run, "add", 9, state="success")
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index__in=[3, 7]).update(state="failed")
        DagRun.objects.filter(pk=run.pk).update(state="failed")
        body = operator_client.get(f"/dags/view_add/runs/{run.run_id}/tasks/add/", HTTP_HX_REQUEST="true").content.decode()
        bar = body.split('id="progress"')[1][:1500]
        segments = re.findall(r'class="segment state-(\w+)" style="width: ([0-9.]+)%" title="(\d+) ', bar)
        assert segments == [("success", "77.778", "7"), ("failed", "22.222", "2")]
        assert "7 success, 2 failed" in bar

    def test_it_orders_segments_from_one_list_of_every_state(self) -> None:
        from runs.models import TaskInstanceState
        from runs.web.queries import STATE_BAR_ORDER
        assert set(TaskInstanceState.values) <= set(STATE_BAR_ORDER), "a new state needs its place in the bar"
