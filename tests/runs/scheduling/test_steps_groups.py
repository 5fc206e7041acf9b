"""Depth-first scheduling inside a mapped task group is decided in SQL, whatever the number of indexes."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.models import DagRun, TaskInstance
from runs.scheduling.steps import expand_mapped_task, schedule_task_instances
from tests.runs.factories import make_run

GROUP = """
@task
def first(x):
    return x

@task
def second(y):
    return y

@task_group
def per_item(x):
    second(first(x))

with DAG("groups") as the_dag:
    per_item.expand(x=list(range(N)))
"""


def _expanded(tmp_path: Path, n: int) -> DagRun:
    tmp_path.mkdir(parents=True, exist_ok=True)
    run = make_run(tmp_path, GROUP.replace("N", str(n)), dag_id="groups")
    data = run.serialized_dag.data
    for task_id in ("per_item.first", "per_item.second"):
        assert expand_mapped_task(dag_run=run, data=data, task_id=task_id) == n
    TaskInstance.objects.filter(dag_run=run, task_id="per_item.first").update(state="running")
    return run


def _states(run: DagRun) -> dict[int, str]:
    return dict(TaskInstance.objects.filter(dag_run=run, task_id="per_item.second").values_list("map_index", "state"))


@pytest.mark.django_db
class SameIndexSchedulingTests:
    def test_it_moves_only_the_indexes_whose_upstream_finished_with_the_same_queries_at_any_size(self, tmp_path: Path) -> None:
        queries = {}
        for n in (3, 300):
            run = _expanded(tmp_path / str(n), n)
            TaskInstance.objects.filter(dag_run=run, task_id="per_item.first", map_index=1).update(state="success")
            TaskInstance.objects.filter(dag_run=run, task_id="per_item.first", map_index=2).update(state="failed")
            with CaptureQueriesContext(connection) as ctx:
                schedule_task_instances(dag_run=run, data=run.serialized_dag.data)
            # Same number of queries and the same SQL text: no list of every waiting index sent.
            queries[n] = (len(ctx.captured_queries), sum(len(q["sql"]) for q in ctx.captured_queries))
            states = _states(run)
            assert states[1] == "scheduled" and states[2] == "upstream_failed"
            assert {s for i, s in states.items() if i not in (1, 2)} == {"none"}
        assert queries[3] == queries[300]

    def test_it_runs_an_index_whose_upstream_index_was_removed(self, tmp_path: Path) -> None:
        run = _expanded(tmp_path, 3)
        TaskInstance.objects.filter(dag_run=run, task_id="per_item.first", map_index=0).update(state="removed")
        schedule_task_instances(dag_run=run, data=run.serialized_dag.data)
        assert _states(run) == {0: "scheduled", 1: "none", 2: "none"}
