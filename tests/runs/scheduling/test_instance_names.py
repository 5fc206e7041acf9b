"""Instances get their map_index_template names from the scheduler, before any of them runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs.execution.execute import execute_task_instance
from runs.models import DagRun, TaskInstance
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.steps import schedule_dag_run
from tests.runs.factories import make_run, ti

NAMED = """
@task
def files():
    return {"north.csv": 10, "south.csv": 20}

@task(map_index_template="{{ mapping.key }} ({{ mapping.value }} rows)")
def load(item):
    return item[1]

@task(map_index_template="{{ task.op_kwargs['city'] }} {{ year }}")
def weather(city, year):
    return city

@task(map_index_template="{{ mapping.key }}")
def double(x):
    return 2 * x

with DAG("named") as the_dag:
    listed = files()
    load.expand(item=listed)
    weather.expand(city=["Oslo", "Lima"], year=[2023, 2024])
    double.expand(x=listed.map(lambda kv: kv[0]))
"""


def names(run: DagRun, task_id: str) -> list[str | None]:
    return list(TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index__gte=0)
                .order_by("map_index").values_list("rendered_map_index", flat=True))


@pytest.mark.django_db(transaction=True)
class NameMappedInstancesTests:
    def test_it_names_instances_from_an_upstream_dict_before_they_run(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, NAMED, dag_id="named")
        executor = InlineExecutor()
        schedule_dag_run(dag_run_id=run.pk, executor=executor)
        execute_task_instance(ti(run, "files").pk)
        schedule_dag_run(dag_run_id=run.pk, executor=executor)
        assert names(run, "load") == ["north.csv (10 rows)", "south.csv (20 rows)"]
        assert set(TaskInstance.objects.filter(dag_run=run, task_id="load").values_list("state", flat=True)) == {"queued"}

    def test_it_leaves_a_template_it_cannot_render_to_the_worker(self, tmp_path: Path) -> None:
        # {{ year }} is not in the scheduler's context (only the worker's task context has the
        # kwargs by name via the operator), so the scheduler leaves these names empty.
        run = make_run(tmp_path, NAMED, dag_id="named")
        schedule_dag_run(dag_run_id=run.pk, executor=InlineExecutor())
        assert names(run, "weather") == [None, None, None, None]

    def test_it_leaves_mapping_over_a_function_to_the_worker_which_names_it(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, NAMED, dag_id="named")
        executor = InlineExecutor()
        schedule_dag_run(dag_run_id=run.pk, executor=executor)
        files_ti = ti(run, "files")
        execute_task_instance(files_ti.pk)
        executor.pending.clear()
        schedule_dag_run(dag_run_id=run.pk, executor=executor)
        assert names(run, "double") == [None, None]
        for pk in TaskInstance.objects.filter(dag_run=run, task_id="double").values_list("pk", flat=True):
            execute_task_instance(pk)
        assert names(run, "double") == ["north.csv", "south.csv"]


HOSTILE_NAMES = """
@task
def progress():
    return [{"done": 1, "total": 2}, {"done": 0, "total": 0}]

@task(map_index_template="{{ 100 * mapping.value.done // mapping.value.total }}%")
def percent(p):
    return p

@task(map_index_template="{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
def slow(p):
    return p

@task(map_index_template="{{ mapping.value }}")
def fine(x):
    return x

with DAG("hostile_names") as the_dag:
    listed = progress()
    percent.expand(p=listed)
    slow.expand(p=listed)
    fine.expand(x=[1, 2])
"""


@pytest.mark.django_db(transaction=True)
class HostileNameTemplateTests:
    """A name template that raises or stalls fails that name only: never the scheduler's pass."""

    def test_it_keeps_the_expansion_and_names_what_it_can(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from dagsapp import templating

        monkeypatch.setattr(templating, "MAX_RENDER_SECONDS", 0.2)
        run = make_run(tmp_path, HOSTILE_NAMES, dag_id="hostile_names")
        executor = InlineExecutor()
        schedule_dag_run(dag_run_id=run.pk, executor=executor)
        execute_task_instance(ti(run, "progress").pk)

        schedule_dag_run(dag_run_id=run.pk, executor=executor)  # ZeroDivisionError, then a stall: no exception

        assert names(run, "fine") == ["1", "2"]
        assert names(run, "percent") == ["50%", None]
        assert names(run, "slow") == [None, None]
        assert set(TaskInstance.objects.filter(dag_run=run, task_id__in=["percent", "slow"]).values_list("state", flat=True)) == {"queued"}
