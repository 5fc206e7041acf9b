"""queue_task_instances: what is handed to the executor, once, within max_active_tis_per_dagrun."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs.models import TaskInstance
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.steps import queue_task_instances
from tests.dag_sources import CHAIN
from tests.runs.factories import NONE, QUEUED, SCHEDULED, SUCCESS, data, expand, make_run, schedule, states, ti

pytestmark = pytest.mark.django_db

PARALLEL = """
with DAG("parallel") as the_dag:
    EmptyOperator(task_id="a")
    EmptyOperator(task_id="b")
    EmptyOperator(task_id="c") >> EmptyOperator(task_id="d")
"""

CAPPED = """
@task
def add(x):
    return x + 1

with DAG("capped") as the_dag:
    add.partial(max_active_tis_per_dagrun=2).expand(x=[1, 2, 3, 4, 5])
"""


class QueueTaskInstancesTests:
    def test_it_queues_scheduled_instances_and_hands_exactly_those_to_the_executor(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, PARALLEL, dag_id="parallel")
        schedule(run)
        executor = InlineExecutor()

        assert queue_task_instances(dag_run=run, data=data(run), executor=executor)

        queued = TaskInstance.objects.filter(dag_run=run, state=QUEUED)
        assert sorted(executor.pending) == sorted(queued.values_list("pk", flat=True))
        assert sorted(queued.values_list("task_id", flat=True)) == ["a", "b", "c"]
        assert set(queued.values_list("try_number", flat=True)) == {1}
        assert all(t.queued_at is not None for t in queued)
        assert states(run, "d") == {-1: NONE}

    def test_it_queues_nothing_twice(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, PARALLEL, dag_id="parallel")
        schedule(run)
        queue_task_instances(dag_run=run, data=data(run), executor=InlineExecutor())
        executor = InlineExecutor()

        assert not queue_task_instances(dag_run=run, data=data(run), executor=executor)

        assert executor.pending == []

    def test_it_increments_the_try_number_of_a_retry(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")
        TaskInstance.objects.filter(dag_run=run, task_id="a").update(state=SCHEDULED, try_number=1)

        queue_task_instances(dag_run=run, data=data(run), executor=InlineExecutor())

        assert ti(run, "a").try_number == 2

    def test_it_keeps_within_max_active_tis_per_dagrun(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CAPPED, dag_id="capped")
        expand(run, "add")
        schedule(run)
        executor = InlineExecutor()

        queue_task_instances(dag_run=run, data=data(run), executor=executor)
        assert len(executor.pending) == 2
        assert not queue_task_instances(dag_run=run, data=data(run), executor=executor)
        assert len(executor.pending) == 2

        TaskInstance.objects.filter(pk=executor.pending[0]).update(state=SUCCESS)
        queue_task_instances(dag_run=run, data=data(run), executor=executor)
        assert len(executor.pending) == 3
        assert TaskInstance.objects.filter(dag_run=run, state=QUEUED).count() == 2
