"""What the benchmarks share: figures, repeated timings, the live stack, bulk-inserted runs."""
from __future__ import annotations

import os
import socket
import statistics
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from bench.env import BASE_DIR, var_dir
from runs.processes import ProcessGroup, dag_processor_argv, scheduler_argv, worker_answers, worker_argv

Op = Literal["<", "<=", ">", ">=", "=="]


@dataclass
class Context:
    """What every benchmark gets: the size to run at and the environment for child processes."""

    quick: bool
    env: dict[str, str]
    # --big: also the largest sizes (benchmark 1 at N = 100,000); --sizes: only these N (benchmark 1).
    big: bool = False
    sizes: list[int] | None = None


@dataclass
class Figure:
    """One row of the results table: the samples of one measurement and its target."""

    name: str
    size: str
    unit: str
    samples: list[float] = field(default_factory=list)
    target_op: Op | None = None
    target_value: float | None = None
    # Why there is no value (a view not built yet, a benchmark that failed).
    missing: str | None = None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def min(self) -> float | None:
        return min(self.samples) if self.samples else None

    @property
    def max(self) -> float | None:
        return max(self.samples) if self.samples else None

    @property
    def target(self) -> str:
        if self.target_op is None or self.target_value is None:
            return "-"
        return f"{self.target_op} {fmt(self.target_value)}"

    @property
    def status(self) -> str:
        if self.missing:
            return f"n/a ({self.missing})"
        if self.target_op is None or self.target_value is None or self.median is None:
            return "-"
        ok = {
            "<": self.median < self.target_value, "<=": self.median <= self.target_value,
            ">": self.median > self.target_value, ">=": self.median >= self.target_value,
            "==": self.median == self.target_value,
        }[self.target_op]
        return "pass" if ok else "FAIL"

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(median=self.median, min=self.min, max=self.max, target=self.target, status=self.status, runs=len(self.samples))
        return out


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) >= 10:
        return f"{int(value)}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def missing(name: str, size: str, unit: str, reason: str, *, target_op: Op | None = None, target_value: float | None = None) -> Figure:
    return Figure(name, size, unit, target_op=target_op, target_value=target_value, missing=reason)


def timed(fn: Callable[[], Any], *, repeats: int, warmup: int = 0) -> list[float]:
    """Wall times of ``fn`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ----- the live stack: scheduler + Celery worker as subprocesses, as `make run` starts them -----

READY_TIMEOUT_SEC = 60.0


class Stack(ProcessGroup):
    """Processes started for a benchmark; stopped (their whole process groups) by ``stop()``."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(var_dir() / "bench-logs", {**os.environ, **env})

    def start_worker(self, name: str, *, app: str, queue: str, concurrency: int = 2) -> None:
        node = f"{name}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        process = self.start(name, worker_argv(app=app, concurrency=concurrency, queue=queue, node=node, loglevel="WARNING",
                                               options=("--without-mingle", "--without-gossip")))
        if not worker_answers(_celery_app(app).control, node=node, process=process, timeout=READY_TIMEOUT_SEC):
            raise RuntimeError(f"worker {name} did not answer a ping:\n{self.output(name)[-4000:]}")

    def stop(self, *names: str) -> None:
        super().stop(*names)
        for name in names or list(self.processes):
            del self.processes[name]

    def stop_one(self, name: str) -> None:
        if name in self.processes:
            self.stop(name)


def _celery_app(module: str) -> Any:
    import importlib

    mod = importlib.import_module(module)
    return getattr(mod, "app", None) or mod.celery_app


_engine_stack: Stack | None = None


def engine_stack(env: dict[str, str]) -> Stack:
    """The scheduler and a 2-process Celery worker on the benchmark database, started once."""
    global _engine_stack
    if _engine_stack is None:
        from config import celery_app

        celery_app.control.purge()  # messages of an interrupted earlier run would run against this one
        stack = Stack(env)
        try:
            stack.start_worker("worker", app="config", queue=celery_app.conf.task_default_queue)
            stack.start("dag_processor", dag_processor_argv())
            stack.start("scheduler", scheduler_argv())
        except BaseException:
            stack.stop()
            raise
        _engine_stack = stack
    return _engine_stack


def stop_engine_stack() -> None:
    global _engine_stack
    if _engine_stack is not None:
        _engine_stack.stop()
        _engine_stack = None


def wait_for_run(run_pk: int, *, timeout: float, poll: float = 0.02) -> Any:
    from runs.models import DagRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = DagRun.objects.filter(pk=run_pk).only("state", "end_date", "start_date", "queued_at").first()
        if run is not None and run.is_finished:
            return run
        time.sleep(poll)
    raise TimeoutError(f"run {run_pk} did not finish within {timeout:.0f} s")


# ----- data set up in bulk -----

# Runs inserted once and kept by later invocations (the Grid's 12.5 million instances take minutes).
SEEDED_DAGS = ("bench_grid_huge",)


def reset_runs() -> None:
    """Every run, instance, result and log of earlier benchmark runs gone, but the seeded DAGs' runs:
    one TRUNCATE when there are none of those, else a delete of the others."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM runs_dagrun WHERE dag_id = ANY(%s))", [list(SEEDED_DAGS)])
        (kept,) = cur.fetchone() or (False,)
        if not kept:
            cur.execute("TRUNCATE runs_taskinstancelog, runs_xcom, runs_taskmap, runs_taskinstance, runs_dagrun, runs_taskcount CASCADE")
            return
    for dag_id in _bench_dag_ids_with_runs():
        if dag_id not in SEEDED_DAGS:
            delete_runs(dag_id)


COUNT_TRIGGERS = ("ti_count_insert", "ti_count_update", "ti_count_delete")


def set_live_counts(enabled: bool) -> None:
    """The live counts' triggers on or off (``BENCH_LIVE_COUNTS=off``) for an A/B of their write
    cost; set at every start, so a run that stopped half-way leaves nothing behind for the next."""
    from django.db import connection

    with connection.cursor() as cur:
        for name in COUNT_TRIGGERS:
            cur.execute(f"ALTER TABLE runs_taskinstance {'ENABLE' if enabled else 'DISABLE'} TRIGGER {name}")
        # The live runs' span probe's index (migration 0018) goes with them, so that "off" is the
        # write path as it was before; called after reset_runs, on empty tables.
        if enabled:
            cur.execute("CREATE INDEX IF NOT EXISTS ti_run_task_end ON runs_taskinstance (dag_run_id, task_id, end_date) "
                        "WHERE end_date IS NOT NULL")
        else:
            cur.execute("DROP INDEX IF EXISTS ti_run_task_end")


def _bench_dag_ids_with_runs() -> list[str]:
    from runs.models import DagRun

    return list(DagRun.objects.values_list("dag_id", flat=True).distinct())


def delete_runs(dag_id: str) -> None:
    """Every run of one DAG with its instances, tries, logs, results and maps, in SQL."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE gone ON COMMIT DROP AS SELECT id FROM runs_dagrun WHERE dag_id = %s", [dag_id])
        cur.execute("CREATE TEMP TABLE gone_ti ON COMMIT DROP AS"
                    " SELECT id FROM runs_taskinstance WHERE dag_run_id IN (SELECT id FROM gone)")
        cur.execute("DELETE FROM runs_taskinstancelog WHERE task_instance_id IN (SELECT id FROM gone_ti)")
        cur.execute("DELETE FROM runs_taskinstancetry WHERE task_instance_id IN (SELECT id FROM gone_ti)")
        for table in ("runs_xcom", "runs_taskmap", "runs_taskinstance"):
            cur.execute(f"DELETE FROM {table} WHERE dag_run_id IN (SELECT id FROM gone)")
        cur.execute("DELETE FROM runs_dagrun WHERE id IN (SELECT id FROM gone)")


def sync_bench_dags() -> None:
    from bench.env import DAGS_FOLDER
    from runs.scheduling.dag_processing import process_dags_folder

    process_dags_folder(DAGS_FOLDER)


def finished_run(dag_id: str, *, run_id: str, offset_minutes: int = 0) -> Any:
    """A run with its placeholders, marked finished so no scheduler ever picks it up."""
    from django.utils import timezone

    from runs.models import DagRun, DagRunState
    from runs.services import create_dag_run

    when = timezone.now() - timedelta(days=1) + timedelta(minutes=offset_minutes)
    run = create_dag_run(dag_id=dag_id, run_id=run_id, logical_date=when)
    DagRun.objects.filter(pk=run.pk).update(state=DagRunState.SUCCESS, start_date=when, end_date=when + timedelta(minutes=5))
    run.refresh_from_db()
    return run


# A realistic mix for a finished mapped task: mostly success, some failed / skipped / upstream failed.
STATE_MIX_SQL = """CASE WHEN i %% 50 = 7 THEN 'failed' WHEN i %% 97 = 3 THEN 'skipped'
                   WHEN i %% 211 = 5 THEN 'upstream_failed' ELSE 'success' END"""


def insert_mapped_instances(run: Any, task_ids: Iterable[str], n: int) -> None:
    """Replace each task's placeholder by n finished instances (varied states and durations), in SQL."""
    from django.db import connection

    from runs.models import TaskInstance

    task_ids = list(task_ids)
    TaskInstance.objects.filter(dag_run=run, task_id__in=task_ids, map_index=-1).delete()
    with connection.cursor() as cur:
        for task_id in task_ids:
            cur.execute(
                f"""
                INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, state, try_number, max_tries, hostname,
                                               start_date, end_date, duration, updated_at)
                SELECT %s, %s, i, {STATE_MIX_SQL}, 1, 0, 'bench',
                       %s + i * interval '1 millisecond',
                       %s + i * interval '1 millisecond' + ((i::bigint * 7919) %% 10007) * interval '1 millisecond',
                       ((i::bigint * 7919) %% 10007) / 1000.0, now()
                FROM generate_series(0, %s) AS i
                """,
                [run.pk, task_id, run.start_date, run.start_date, n - 1],
            )


def finish_unmapped(run: Any) -> None:
    """The run's remaining placeholders and plain tasks: success, with a start, end and try."""
    from runs.models import TaskInstance, TaskInstanceState

    TaskInstance.objects.filter(dag_run=run, map_index=-1).update(
        state=TaskInstanceState.SUCCESS, try_number=1, start_date=run.start_date, end_date=run.end_date, duration=300.0)


def freeze_summary(run: Any) -> None:
    """What a run's end does (runs.scheduling.steps.update_dag_run_state): its per-task summary frozen."""
    from runs import summaries

    summaries.freeze(run.pk, summaries.aggregate([run.pk]).get(run.pk, []))


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE runs_taskinstance, runs_dagrun, runs_xcom, runs_taskinstancelog, runs_taskmap")


def logged_in_client() -> Any:
    """A Django test Client logged in as a superuser (operator), requests served in this process."""
    from django.contrib.auth.models import User
    from django.test import Client

    user, created = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    if created:
        user.set_unusable_password()
        user.save()
    client = Client()
    client.force_login(user)
    return client


def view_missing(url_name: str) -> str | None:
    """Why a view can't be measured yet (its URL name is not registered), or None."""
    from django.urls import NoReverseMatch, reverse

    try:
        reverse(url_name, kwargs=_DUMMY_KWARGS.get(url_name, {}))
    except NoReverseMatch:
        return "view missing"
    except Exception as exc:  # noqa: BLE001 - the URLconf itself is broken (a view module being written)
        return f"view missing: {type(exc).__name__}"
    return None


_DUMMY_KWARGS = {
    "runs:grid": {"dag_id": "d"},
    "runs:graph": {"dag_id": "d"},
    "runs:api_mapped_instances": {"dag_id": "d", "run_id": "r", "task_id": "t"},
    "api_v2:get_mapped_task_instances": {"dag_id": "d", "dag_run_id": "r", "task_id": "t"},
    "runs:task_panel": {"dag_id": "d", "run_id": "r", "task_id": "t"},
    "runs:run_panel": {"dag_id": "d", "run_id": "r"},
    "runs:run_gantt": {"dag_id": "d", "run_id": "r"},
}


def bench_path(*parts: str) -> Path:
    return BASE_DIR / "bench" / Path(*parts)


def big_mapped_run(n: int) -> Any:
    """bench_reduce's run whose ``item`` has n finished instances; built once per invocation."""
    from runs.models import DagRun

    run_id = f"bench_big_{n}"
    run = DagRun.objects.select_related("serialized_dag").filter(dag_id="bench_reduce", run_id=run_id).first()
    if run is None:
        run = finished_run("bench_reduce", run_id=run_id)
        insert_mapped_instances(run, ["item"], n)
        finish_unmapped(run)
        freeze_summary(run)
        analyze()
        run = DagRun.objects.select_related("serialized_dag").get(pk=run.pk)
    return run
