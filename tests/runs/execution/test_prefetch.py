"""A batch of mapped instances reads its items in one query, and never uses a stale one."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.execution.execute import execute_task_instance, execute_task_instances, load_dag_run
from runs.execution.prefetch import prefetch_batch
from runs.models import TaskInstance, TaskMap, XCom
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.steps import schedule_dag_run
from tests.runs.factories import make_run, ti

MAPPED_OVER_UPSTREAM = """
@task
def make():
    return [10, 20, 30, 40, 50]

@task
def double(x):
    return 2 * x

with DAG("prefetched") as the_dag:
    double.expand(x=make())
"""


def _expanded(tmp_path: Path):  # type: ignore[no-untyped-def]
    run = make_run(tmp_path, MAPPED_OVER_UPSTREAM, dag_id="prefetched")
    executor = InlineExecutor()
    schedule_dag_run(dag_run_id=run.pk, executor=executor)
    execute_task_instance(ti(run, "make").pk)
    executor.pending.clear()
    schedule_dag_run(dag_run_id=run.pk, executor=executor)
    ids = list(TaskInstance.objects.filter(dag_run=run, task_id="double").order_by("map_index").values_list("pk", flat=True))
    assert set(executor.pending) == set(ids)
    return run, ids


def results(run, ids):  # type: ignore[no-untyped-def]
    values = dict(XCom.objects.filter(dag_run=run, task_id="double").values_list("map_index", "value"))
    return [values.get(i) for i in range(len(ids))]


@pytest.mark.django_db(transaction=True)
class BatchPrefetchTests:
    def test_it_reads_the_items_of_a_batch_in_one_query(self, tmp_path: Path) -> None:
        run, ids = _expanded(tmp_path)
        with CaptureQueriesContext(connection) as queries:
            execute_task_instances(ids)
        item_reads = [q for q in queries.captured_queries if "runs_xcom" in q["sql"] and "->" in q["sql"]]
        assert len(item_reads) == 1
        assert results(run, ids) == [20, 40, 60, 80, 100]

    def test_it_ignores_a_prefetched_item_whose_upstream_result_was_replaced(self, tmp_path: Path) -> None:
        run, ids = _expanded(tmp_path)
        prefetch = prefetch_batch(ids, lambda run_id: load_dag_run(run_id)[1])
        assert prefetch.get(ids[0]) is not None and prefetch.get(ids[0]).item == 10
        # The upstream was cleared and ran again with another result (new TaskMap row).
        TaskMap.objects.filter(dag_run=run, task_id="make").delete()
        XCom.objects.filter(dag_run=run, task_id="make").update(value=[1, 2, 3, 4, 5])
        TaskMap.objects.create(dag_run=run, task_id="make", map_index=-1, length=5)
        for ti_id in ids:
            execute_task_instance(ti_id, preloaded=prefetch.get(ti_id))
        assert results(run, ids) == [2, 4, 6, 8, 10]

    def test_it_skips_an_instance_cleared_before_its_turn_in_the_batch(self, tmp_path: Path) -> None:
        run, ids = _expanded(tmp_path)
        # Cleared while the batch waits: the previous instance's commit must not claim it.
        TaskInstance.objects.filter(pk=ids[2]).update(state="none")
        execute_task_instances(ids)
        assert results(run, ids) == [20, 40, None, 80, 100]
        states = dict(TaskInstance.objects.filter(pk__in=ids).values_list("pk", "state"))
        assert [states[i] for i in ids] == ["success", "success", "none", "success", "success"]

    def test_it_names_the_run_and_task_of_a_batch(self, tmp_path: Path) -> None:
        run, ids = _expanded(tmp_path)
        prefetch = prefetch_batch(ids, lambda run_id: load_dag_run(run_id)[1])
        # The worker sizes a batch's first group by what this (run, task) cost before.
        assert prefetch.tasks == [(run.pk, "double")]
        assert prefetch_batch([ti(run, "make").pk], lambda run_id: load_dag_run(run_id)[1]).tasks == []
