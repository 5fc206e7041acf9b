"""7. Reduce memory: a task summing N upstream results through the lazy sequence, run in a fresh
worker-like process; its peak-memory (ru_maxrss) growth compared with an empty task's."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from bench.common import Context, Figure, big_mapped_run
from bench.env import BASE_DIR

TITLE = "reduce_memory"
NEEDS_STACK = False


def size(ctx: Context) -> int:
    return 1000 if ctx.quick else 100_000


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    s = f"sum of {size(ctx)}"
    return [("reduce memory: peak growth over empty task", s, "MB"), ("reduce memory: sum task peak growth", s, "MB"),
            ("reduce memory: empty task peak growth", s, "MB"), ("reduce: sum task duration", s, "s"),
            ("reduce memory: Python heap peak, sum task (tracemalloc)", s, "MB"),
            ("reduce memory: Python heap peak, empty task (tracemalloc)", s, "MB")]


def insert_xcoms(run_pk: int, n: int) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs_xcom WHERE dag_run_id = %s AND task_id = 'item'", [run_pk])
        if cur.fetchone()[0] == n:
            return
        cur.execute(
            "INSERT INTO runs_xcom (dag_run_id, task_id, map_index, key, value, created_at)"
            " SELECT %s, 'item', i, 'return_value', to_jsonb(i), now() FROM generate_series(0, %s) AS i"
            " ON CONFLICT DO NOTHING",
            [run_pk, n - 1],
        )
        cur.execute("ANALYZE runs_xcom")


def execute(ctx: Context, run_pk: int, task_id: str, *, trace: bool = False) -> tuple[float, object, float]:
    """(peak growth in MB, the XCom pushed, the instance's duration) of one fresh try.

    With ``trace``, the growth is tracemalloc's peak of the Python heap instead of ru_maxrss.
    """
    from runs.models import TaskInstance, XCom

    XCom.objects.filter(dag_run_id=run_pk, task_id=task_id).delete()
    TaskInstance.objects.filter(dag_run_id=run_pk, task_id=task_id).update(state="queued", try_number=1, max_tries=0)
    ti = TaskInstance.objects.get(dag_run_id=run_pk, task_id=task_id)
    proc = subprocess.run([sys.executable, "-m", "bench.reduce_child", str(ti.pk), *(["--tracemalloc"] if trace else [])],
                          cwd=BASE_DIR, env={**os.environ, **ctx.env},
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.reduce_child failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["state"] != "success":
        raise RuntimeError(f"{task_id} ended {out['state']}")
    ti.refresh_from_db()
    value = XCom.objects.filter(dag_run_id=run_pk, task_id=task_id).values_list("value", flat=True).first()
    growth = out["heap_peak_bytes"] / 2**20 if trace else (out["after_kb"] - out["before_kb"]) / 1024
    return growth, value, ti.duration or 0.0


def run(ctx: Context) -> list[Figure]:
    n = size(ctx)
    run_ = big_mapped_run(n)
    insert_xcoms(run_.pk, n)
    repeats = 1 if ctx.quick else 5
    empty, total, durations = [], [], []
    for _ in range(repeats):
        growth, _, _ = execute(ctx, run_.pk, "empty")
        empty.append(growth)
        growth, value, duration = execute(ctx, run_.pk, "total")
        if value != n * (n - 1) // 2:
            raise RuntimeError(f"total returned {value}, expected {n * (n - 1) // 2}")
        total.append(growth)
        durations.append(duration)
    heap_total = execute(ctx, run_.pk, "total", trace=True)[0]
    heap_empty = execute(ctx, run_.pk, "empty", trace=True)[0]
    base = statistics.median(empty)
    (over, s, unit), (sum_name, _, _), (empty_name, _, _), (dur_name, _, dur_unit), (heap_t, _, _), (heap_e, _, _) = expected(ctx)
    return [
        Figure(over, s, unit, [t - base for t in total], target_op="<", target_value=100),
        Figure(sum_name, s, unit, total),
        Figure(empty_name, s, unit, empty),
        Figure(dur_name, s, dur_unit, durations),
        Figure(heap_t, s, unit, [heap_total]),
        Figure(heap_e, s, unit, [heap_empty]),
    ]
