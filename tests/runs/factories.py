"""Building runs for scheduler tests: a DAG file in a temporary folder, parsed and stored the real way;
the scheduler steps run one at a time on them."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from django.utils import timezone

from runs.logs import read_log
from runs.models import DagImportError, DagRun, TaskInstance, TaskMap
from runs.scheduling.dag_processing import process_dags_folder
from runs.scheduling.steps import expand_mapped_task, schedule_task_instances
from runs.services import create_dag_run

HEADER = """\
from __future__ import annotations
from datetime import datetime, timedelta
from dagsapp.sdk import (DAG, BashOperator, EmptyOperator, ParamRef, PythonOperator, TriggerRule,
                         VariableRef, AirflowFailException, dag, task, task_group)
"""


def write_dag(folder: Path, source: str, *, name: str = "the_dag.py") -> Path:
    path = folder / name
    path.write_text(HEADER + textwrap.dedent(source))
    return path


def make_run(folder: Path, source: str, *, dag_id: str, conf: dict[str, Any] | None = None, name: str = "the_dag.py") -> DagRun:
    """Writes the DAG file, parses the folder and creates a manual run of ``dag_id``."""
    path = write_dag(folder, source, name=name)
    process_dags_folder(folder)
    error = DagImportError.objects.filter(filename=str(path.resolve())).first()
    assert error is None, error.stacktrace
    return create_dag_run(dag_id=dag_id, conf=conf, logical_date=timezone.now())


def states(run: DagRun, task_id: str) -> dict[int, str]:
    """map_index -> state of one task's instances."""
    return dict(TaskInstance.objects.filter(dag_run=run, task_id=task_id).order_by("map_index").values_list("map_index", "state"))


def ti(run: DagRun, task_id: str, map_index: int = -1) -> TaskInstance:
    return TaskInstance.objects.get(dag_run=run, task_id=task_id, map_index=map_index)


def set_state(run: DagRun, task_id: str, state: str, *, map_index: int | None = None) -> None:
    qs = TaskInstance.objects.filter(dag_run=run, task_id=task_id)
    if map_index is not None:
        qs = qs.filter(map_index=map_index)
    qs.update(state=state)


def data(run: DagRun) -> dict[str, Any]:
    return run.serialized_dag.data


# ----- scheduler steps, one at a time -----

NONE, SCHEDULED, QUEUED, RUNNING, SUCCESS, FAILED = "none", "scheduled", "queued", "running", "success", "failed"
SKIPPED, UPSTREAM_FAILED, REMOVED, UP_FOR_RETRY = "skipped", "upstream_failed", "removed", "up_for_retry"


def expand(run: DagRun, task_id: str) -> int:
    return expand_mapped_task(dag_run=run, data=data(run), task_id=task_id)


def schedule(run: DagRun) -> bool:
    return schedule_task_instances(dag_run=run, data=data(run))


def record_length(run: DagRun, task_id: str, length: int) -> None:
    """What a worker leaves behind when a task that feeds a mapped task succeeds."""
    TaskMap.objects.update_or_create(dag_run=run, task_id=task_id, map_index=-1, defaults={"length": length})
    set_state(run, task_id, SUCCESS, map_index=-1)


def placeholder_log(run: DagRun, task_id: str) -> str:
    placeholder = ti(run, task_id)
    return read_log(placeholder.pk, placeholder.try_number)[0]
