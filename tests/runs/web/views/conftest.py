"""Fixtures for the dashboard's view tests: a parsed DAG with a mapped task, and users per role."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from django.utils import timezone

from runs.models import DagRun, TaskInstance, TaskInstanceState
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run

S = TaskInstanceState

ADD_DAG = """\
from __future__ import annotations
from datetime import datetime
from dagsapp.sdk import dag, task


@dag(dag_id="view_add", start_date=datetime(2024, 1, 1), schedule=None)
def view_add():
    @task(map_index_template="{{ task.op_kwargs['x'] }}")
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(add.partial(y=10).expand(x=[1, 2, 3]))


view_add()
"""


@pytest.fixture
def dags_folder(tmp_path: Path) -> Path:
    (tmp_path / "view_add.py").write_text(textwrap.dedent(ADD_DAG))
    return tmp_path


@pytest.fixture
def parsed_dag(db: None, dags_folder: Path) -> str:
    process_dags_folder(dags_folder)
    return "view_add"


def expand(run: DagRun, task_id: str, n: int, *, state: str = S.NONE, names: Callable[[int], str] | None = None) -> None:
    """What the scheduler's expansion does, with rows made directly: indexes 0..n-1 replace the placeholder."""
    TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index=-1).delete()
    now = timezone.now()
    TaskInstance.objects.bulk_create([
        TaskInstance(dag_run=run, task_id=task_id, map_index=i, state=state, try_number=1 if state != S.NONE else 0,
                     rendered_map_index=names(i) if names else None,
                     start_date=now if state != S.NONE else None, end_date=now if state == S.SUCCESS else None,
                     duration=float(i) if state == S.SUCCESS else None)
        for i in range(n)
    ])


@pytest.fixture
def make_run(parsed_dag: str) -> Callable[..., DagRun]:
    def make(**kwargs: object) -> DagRun:
        return create_dag_run(dag_id=parsed_dag, logical_date=timezone.now(), **kwargs)  # type: ignore[arg-type]
    return make


@pytest.fixture
def run(make_run: Callable[..., DagRun]) -> DagRun:
    """A running run with add[0..2] expanded: 0 and 1 succeeded, 2 is running."""
    r = make_run()
    DagRun.objects.filter(pk=r.pk).update(state="running")
    r.refresh_from_db()
    expand(r, "add", 3, state=S.SUCCESS, names=lambda i: f"x={i + 1}")
    TaskInstance.objects.filter(dag_run=r, task_id="add", map_index=2).update(state=S.RUNNING, end_date=None, duration=None)
    return r


@pytest.fixture
def expand_task() -> Callable[..., None]:
    return expand
