"""Actions on runs that the CLI, the scheduler and the web pages share."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from runs.models import DagModel, DagRun, DagRunState, DagRunType, TaskInstance, TaskInstanceState
from runs.notify import notify_scheduler


class DagRunError(ValueError):
    pass


def parse_conf(raw: str | None) -> dict[str, Any]:
    """Trigger conf from user text: empty means {}, anything else must be a JSON object."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DagRunError(f"conf is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(value, dict):
        raise DagRunError(f"conf must be a JSON object, not {type(value).__name__}")
    return value


def create_dag_run(
    *,
    dag_id: str,
    conf: dict[str, Any] | None = None,
    run_type: str = DagRunType.MANUAL,
    logical_date: datetime | None = None,
    run_id: str | None = None,
    data_interval: tuple[datetime, datetime] | None = None,
) -> DagRun:
    """A new run of the DAG's latest version, with one not-yet-scheduled instance per task."""
    dag = DagModel.objects.select_related("latest_serialized").filter(dag_id=dag_id, is_active=True).first()
    if dag is None or dag.latest_serialized is None:
        raise DagRunError(f"DAG {dag_id!r} does not exist or has no parsed version")
    if conf is not None and not isinstance(conf, dict):
        raise DagRunError(f"conf must be a JSON object, not {type(conf).__name__}")
    logical_date = logical_date or timezone.now()
    run_id = run_id or f"{run_type}__{logical_date.isoformat()}"
    if len(run_id) > 250 or any(c in run_id for c in "/\\\x00"):
        raise DagRunError("run_id must be at most 250 characters, without '/', '\\' or NUL")
    data = dag.latest_serialized.data
    with transaction.atomic():
        if DagRun.objects.filter(dag_id=dag_id, run_id=run_id).exists():
            raise DagRunError(f"A run {run_id!r} of DAG {dag_id!r} already exists")
        run = DagRun.objects.create(
            dag_id=dag_id, run_id=run_id, run_type=run_type, logical_date=logical_date, conf=conf or {},
            state=DagRunState.QUEUED, serialized_dag=dag.latest_serialized,
            data_interval_start=data_interval[0] if data_interval else logical_date,
            data_interval_end=data_interval[1] if data_interval else logical_date,
        )
        TaskInstance.objects.bulk_create([
            TaskInstance(dag_run=run, task_id=task_id, map_index=-1, state=TaskInstanceState.NONE,
                         max_tries=int(data["tasks"][task_id]["retries"]))
            for task_id in data["task_order"]
        ])
        transaction.on_commit(notify_scheduler)
    return run
