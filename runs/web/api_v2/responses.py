"""Our rows as Airflow's response objects (plain dicts, validated by the schemas on the way out)."""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import signing

from dagsapp.secrets import MASK, SECRET_NAME, mask_secrets
from dagsapp.serialization import DagData, TaskData
from runs.models import (
    DagImportError,
    DagModel,
    DagRun,
    DagRunType,
    SerializedDag,
    TaskInstance,
    TaskInstanceState,
    Variable,
)

BUNDLE_NAME = "dags-folder"
EXECUTOR = "CeleryExecutor"
QUEUE = "default"
# Not an Airflow run type: a run driven in one process by `dags test`; shown as Airflow shows
# runs started by hand.
RUN_TYPES: dict[str, str] = {DagRunType.MANUAL: "manual", DagRunType.SCHEDULED: "scheduled", DagRunType.TEST: "manual"}
TRIGGERED_BY: dict[str, str] = {DagRunType.MANUAL: "rest_api", DagRunType.SCHEDULED: "timetable", DagRunType.TEST: "test"}


def as_uuid(pk: int) -> uuid.UUID:
    """Airflow's ids of instances and DAG versions are UUIDs; ours are integers, written as one."""
    return uuid.UUID(int=pk)


class Versions:
    """DAG version numbers (1, 2, ... per DAG, in the order they were parsed), one query per DAG."""

    def __init__(self) -> None:
        self._numbers: dict[int, int] = {}

    def number(self, version: SerializedDag) -> int:
        if version.pk not in self._numbers:
            self._numbers[version.pk] = SerializedDag.objects.filter(dag_id=version.dag_id, pk__lte=version.pk).count()
        return self._numbers[version.pk]

    def json(self, version: SerializedDag) -> dict[str, Any]:
        return {"id": as_uuid(version.pk), "version_number": self.number(version), "dag_id": version.dag_id,
                "bundle_name": BUNDLE_NAME, "created_at": version.created_at, "dag_display_name": version.dag_id}


def _relative(fileloc: str) -> str | None:
    try:
        return str(Path(fileloc).relative_to(settings.DAGS_FOLDER))
    except ValueError:
        return None


def dag_json(dag: DagModel, *, import_error_files: set[str]) -> dict[str, Any]:
    data: DagData | None = dag.latest_serialized.dag_data() if dag.latest_serialized else None
    schedule = dag.schedule
    return {
        "dag_id": dag.dag_id, "dag_display_name": dag.dag_id, "is_paused": dag.is_paused, "is_stale": not dag.is_active,
        "last_parsed_time": dag.last_parsed, "bundle_name": BUNDLE_NAME, "relative_fileloc": _relative(dag.fileloc),
        "fileloc": dag.fileloc, "description": data["description"] if data else None,
        "timetable_summary": schedule, "timetable_description": _describe_schedule(schedule),
        "timetable_periodic": schedule not in (None, "@once"),
        "tags": [{"name": t, "dag_id": dag.dag_id, "dag_display_name": dag.dag_id} for t in sorted(data["tags"] if data else [])],
        "max_active_tasks": 16, "max_active_runs": dag.max_active_runs,
        "has_task_concurrency_limits": bool(data and any(t["max_active_tis_per_dagrun"] for t in data["tasks"].values())),
        "has_import_errors": dag.fileloc in import_error_files,
        "next_dagrun_logical_date": dag.next_dagrun, "next_dagrun_run_after": dag.next_dagrun,
        "owners": [], "file_token": signing.dumps(dag.fileloc, salt="dagsapp.file_token"),
    }


def _describe_schedule(schedule: str | None) -> str | None:
    if schedule is None:
        return "Never, external triggers only"
    if schedule.startswith("timedelta:"):
        return f"Every {schedule.removeprefix('timedelta:')} seconds"
    return schedule


def dag_run_json(run: DagRun, versions: Versions) -> dict[str, Any]:
    duration = (run.end_date - run.start_date).total_seconds() if run.end_date and run.start_date else None
    return {
        "dag_run_id": run.run_id, "dag_id": run.dag_id, "dag_display_name": run.dag_id, "logical_date": run.logical_date,
        "queued_at": run.queued_at, "start_date": run.start_date, "end_date": run.end_date, "duration": duration,
        "data_interval_start": run.data_interval_start, "data_interval_end": run.data_interval_end,
        "run_after": run.logical_date, "run_type": RUN_TYPES.get(run.run_type, "manual"), "state": run.state,
        "triggered_by": TRIGGERED_BY.get(run.run_type), "conf": run.conf,
        "dag_versions": [versions.json(run.serialized_dag)],
    }


def _task_fields(task: TaskData | None) -> dict[str, Any]:
    operator = task["operator"] if task else None
    return {"operator": operator, "operator_name": operator,
            "task_display_name": task["label"] if task and task.get("label") else None}


def ti_json(ti: TaskInstance, run: DagRun, versions: Versions, *, tasks: dict[str, TaskData] | None = None) -> dict[str, Any]:
    """One instance; ``ti.dag_run`` need not be loaded (``run`` is it)."""
    task = (tasks if tasks is not None else run.serialized_dag.dag_data()["tasks"]).get(ti.task_id)
    fields = _task_fields(task)
    return {
        "id": as_uuid(ti.pk), "task_id": ti.task_id, "dag_id": run.dag_id, "dag_run_id": run.run_id, "map_index": ti.map_index,
        "logical_date": run.logical_date, "run_after": run.logical_date, "start_date": ti.start_date, "end_date": ti.end_date,
        "duration": ti.duration, "state": None if ti.state == TaskInstanceState.NONE else ti.state,
        "try_number": ti.try_number, "max_tries": ti.max_tries, **fields,
        "task_display_name": fields["task_display_name"] or ti.task_id, "dag_display_name": run.dag_id,
        "hostname": ti.hostname or None, "queue": QUEUE, "queued_when": ti.queued_at, "pid": ti.pid, "executor": EXECUTOR,
        "rendered_map_index": ti.rendered_map_index, "rendered_fields": ti.rendered_fields,
        "dag_version": versions.json(run.serialized_dag),
        "map_path": ti.map_path, "item_identity": ti.item_identity, "item_change": ti.item_change,
        **_trigger_fields(ti),
    }


def _trigger_fields(ti: TaskInstance) -> dict[str, Any]:
    """The deferred instance's trigger and its triggerer, as Airflow's TriggerResponse and JobResponse
    (kwargs with secret-looking keys masked). Lists load them with the instances (select_related);
    a single instance reads them only when it has one."""
    if ti.trigger_id is None:
        return {"trigger": None, "triggerer_job": None}
    trigger = ti.trigger
    if trigger is None:
        return {"trigger": None, "triggerer_job": None}
    job = trigger.triggerer
    return {
        "trigger": {"id": trigger.pk, "classpath": trigger.classpath, "kwargs": json.dumps(mask_secrets(trigger.kwargs, set())),
                    "created_date": trigger.created_date, "triggerer_id": job.pk if job is not None else None},
        "triggerer_job": None if job is None else {
            "id": job.pk, "job_type": "TriggererJob", "hostname": job.hostname, "start_date": job.start_date,
            "end_date": job.end_date, "latest_heartbeat": job.heartbeat_at, "state": "running" if job.end_date is None else "success"},
    }


def variable_json(var: Variable) -> dict[str, Any]:
    # Airflow's values are strings; ours are JSON, shown as JSON text unless they are a string.
    value = var.val if isinstance(var.val, str) or var.val is None else json.dumps(var.val)
    if SECRET_NAME.search(var.key):
        value = MASK  # as Airflow's API and the Variables page: a secret-looking key's value is never shown
    return {"key": var.key, "value": value, "description": var.description or None}


def import_error_files() -> set[str]:
    return set(DagImportError.objects.values_list("filename", flat=True))
