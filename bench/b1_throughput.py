"""1. End-to-end throughput: upstream -> N no-op mapped instances -> reduce, through the scheduler
and a 2-process Celery worker; and the raw ceiling, a Celery group of N no-op tasks."""
from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from bench.common import Context, Figure, engine_stack, wait_for_run

TITLE = "throughput"
NEEDS_STACK = True
WARMUP_N = 10


# Five runs per size, but no new run once a size has used this much time: at the engine's current
# ~25 instances/s one 10,000-instance run takes minutes, and the whole suite must stay under 15.
BUDGET_PER_SIZE_SEC = 100.0


def sizes(ctx: Context) -> list[tuple[int, int]]:
    """(N, at most this many runs)."""
    if ctx.quick:
        return [(20, 1)]
    return [(100, 5), (1000, 5), (10_000, 5)]


def run_once(n: int, timeout: float) -> tuple[float, dict[str, Any]]:
    from django.utils import timezone

    from runs.models import TaskInstance
    from runs.services import create_dag_run

    t0 = timezone.now()
    run = create_dag_run(dag_id="bench_throughput", conf={"n": n}, run_id=f"bench_{n}_{uuid.uuid4().hex[:8]}")
    done = wait_for_run(run.pk, timeout=timeout)
    if done.state != "success":
        raise RuntimeError(f"bench_throughput run with n={n} ended {done.state}")
    wall = (done.end_date - t0).total_seconds()
    # Where the time went, from the instances' own timestamps.
    tis = {t: TaskInstance.objects.filter(dag_run=run, task_id=t) for t in ("numbers", "add", "total")}
    up = tis["numbers"].values("start_date", "end_date").get()
    add = list(tis["add"].values_list("queued_at", "start_date", "end_date", "duration"))
    reduce = tis["total"].values("queued_at", "start_date", "end_date").get()
    first_queued = min(a[0] for a in add)
    last_end = max(a[2] for a in add)
    breakdown = {
        "trigger_to_upstream_start_s": (up["start_date"] - t0).total_seconds(),
        "upstream_end_to_first_mapped_queued_s": (first_queued - up["end_date"]).total_seconds(),
        "mapped_phase_s": (last_end - first_queued).total_seconds(),
        "mean_mapped_instance_run_s": statistics.fmean(a[3] for a in add),
        "last_mapped_end_to_reduce_start_s": (reduce["start_date"] - last_end).total_seconds(),
        "reduce_end_to_run_success_s": (done.end_date - reduce["end_date"]).total_seconds(),
    }
    return wall, breakdown


def raw_celery(ctx: Context, n: int) -> float:
    """Seconds from sending a group of n no-op tasks to the last one having run."""
    from celery import group

    from bench.celery_noop import noop
    from bench.env import redis_client

    r = redis_client(ctx.env["CELERY_BROKER_URL"])
    key = f"bench:noop:{uuid.uuid4().hex}"
    t0 = time.perf_counter()
    group(noop.s(key) for _ in range(n)).apply_async()
    deadline = time.monotonic() + 30 + n / 20
    while int(r.get(key) or 0) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"raw Celery: {int(r.get(key) or 0)} of {n} no-op tasks ran")
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    r.delete(key)
    return elapsed


def run(ctx: Context) -> list[Figure]:
    stack = engine_stack(ctx.env)
    stack.start_worker("noop-worker", app="bench.celery_noop", queue="bench_noop")
    figures: list[Figure] = []
    try:
        # Untimed: the worker processes import the DAG file and open their connections once.
        run_once(WARMUP_N, timeout=60)
        raw_celery(ctx, WARMUP_N)
        raw_rates: dict[int, float] = {}
        for n, repeats in sizes(ctx):
            walls, breakdowns, raw = [], [], []
            started = time.monotonic()
            for _ in range(repeats):
                if walls and time.monotonic() - started > BUDGET_PER_SIZE_SEC:
                    break
                wall, breakdown = run_once(n, timeout=60 + n / 10)
                walls.append(wall)
                breakdowns.append(breakdown)
                raw.append(raw_celery(ctx, n))
            detail = {k: statistics.median(b[k] for b in breakdowns) for k in breakdowns[0]}
            one_k = n == 1000
            figures.append(Figure("throughput: trigger to run success", f"N={n}", "s", walls,
                                  target_op="<" if one_k else None, target_value=4.0 if one_k else None,
                                  details={"median_breakdown": detail}))
            figures.append(Figure("throughput: instances/s (ours)", f"N={n}", "inst/s", [n / w for w in walls]))
            raw_rates[n] = statistics.median(n / s for s in raw)
            figures.append(Figure("throughput: raw Celery group no-op", f"N={n}", "tasks/s", [n / s for s in raw]))
        for f in figures:
            if f.name == "throughput: instances/s (ours)":
                n = int(f.size.split("=")[1])
                f.details["ratio_to_raw_celery"] = f.median / raw_rates[n] if f.median else None
                if n == 1000 or ctx.quick:
                    # Target: at least half the raw Celery figure at N = 1,000.
                    f.target_op, f.target_value = ">=", round(raw_rates[n] / 2, 1)
    finally:
        stack.stop_one("noop-worker")
    return figures


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    out = []
    for n, _ in sizes(ctx):
        out += [("throughput: trigger to run success", f"N={n}", "s"), ("throughput: instances/s (ours)", f"N={n}", "inst/s"),
                ("throughput: raw Celery group no-op", f"N={n}", "tasks/s")]
    return out
