"""What ``manage.py dags`` does, as plain functions the command and the tests share."""
from __future__ import annotations

import time
from typing import Any

from django.utils import timezone

from runs.execution.execute import execute_task_instance
from runs.models import DagRun, TaskInstance, TaskInstanceState, XCom
from runs.models.xcom import RETURN_VALUE
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.steps import schedule_dag_run


def dag_run_summary(run: DagRun) -> dict[str, Any]:
    """The JSON object printed by ``dags test --json`` and ``dags trigger --wait --json``."""
    values = {(x["task_id"], x["map_index"]): x["value"]
              for x in XCom.objects.filter(dag_run=run, key=RETURN_VALUE).values("task_id", "map_index", "value")}
    order = {t: i for i, t in enumerate(run.serialized_dag.dag_data()["task_order"])}
    tis = sorted(TaskInstance.objects.filter(dag_run=run).values("task_id", "map_index", "state", "try_number", "rendered_map_index",
                                                                  "map_path"),
                 key=lambda t: (order.get(t["task_id"], 1 << 30), t["map_path"] or [t["map_index"]]))
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state,
        # Only nested instances have a path of indexes.
        "task_instances": [{**{k: v for k, v in t.items() if k != "map_path" or v is not None},
                            "return_value": values.get((t["task_id"], t["map_index"]))} for t in tis],
    }


def run_dag_run_inline(run: DagRun, *, timeout: float = 3600.0) -> DagRun:
    """Drive one run to its end in this process: scheduler steps, then each queued instance, repeat."""
    executor = InlineExecutor()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        did = schedule_dag_run(dag_run_id=run.pk, executor=executor)
        pending, executor.pending = executor.pending, []
        for ti_id in pending:
            execute_task_instance(ti_id)
        run.refresh_from_db()
        if run.is_finished:
            return run
        if not did and not pending:
            nxt = (TaskInstance.objects.filter(dag_run=run, state=TaskInstanceState.UP_FOR_RETRY)
                   .order_by("next_retry_at").values_list("next_retry_at", flat=True).first())
            wait = (nxt - timezone.now()).total_seconds() if nxt else 0.05
            time.sleep(min(max(wait, 0.01), 1.0))
    raise TimeoutError(f"run {run.run_id} did not finish within {timeout} s")


def wait_for_dag_run(run: DagRun, *, timeout: float) -> DagRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            return run
        time.sleep(0.2)
    raise TimeoutError(f"run {run.run_id} did not finish within {timeout} s")
