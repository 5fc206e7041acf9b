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


# Raw Celery is not run at this size and above (a group of 100,000 takes minutes); ours is.
RAW_CELERY_UP_TO = 10_000
BIG = 100_000
# Targets (issue 14): ours over raw Celery at these N; the big run's wall time and peak RSS.
RATIO_TARGETS = {1000: 2.0, 10_000: 3.0}
BIG_TARGET_SEC = 60.0
RSS_TARGET_MB = 250.0


def sizes(ctx: Context) -> list[tuple[int, int]]:
    """(N, at most this many runs)."""
    if ctx.quick:
        return [(20, 1)]
    if ctx.sizes:
        return [(n, 5) for n in ctx.sizes]
    return [(100, 5), (1000, 5), (10_000, 5)] + ([(BIG, 3)] if ctx.big else [])


def peak_rss_mb(pid: int) -> dict[int, float]:
    """VmHWM (the peak resident set since the process started) of a process and its descendants."""
    import psutil

    out: dict[int, float] = {}
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return out
    for proc in procs:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        out[proc.pid] = int(line.split()[1]) / 1024
        except OSError:
            pass
    return out


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
            walls, breakdowns, raw, ratios = [], [], [], []
            started = time.monotonic()
            for _ in range(repeats):
                if walls and time.monotonic() - started > BUDGET_PER_SIZE_SEC:
                    break
                wall, breakdown = run_once(n, timeout=60 + n / 10)
                walls.append(wall)
                breakdowns.append(breakdown)
                if n <= RAW_CELERY_UP_TO:
                    # Interleaved run by run: the machine's speed drifts, a ratio is taken from one pair.
                    raw.append(raw_celery(ctx, n))
                    ratios.append(raw[-1] / wall)
            detail = {k: statistics.median(b[k] for b in breakdowns) for k in breakdowns[0]}
            one_k, big = n == 1000, n >= BIG
            figures.append(Figure("throughput: trigger to run success", f"N={n}", "s", walls,
                                  target_op="<" if one_k or big else None,
                                  target_value=4.0 if one_k else BIG_TARGET_SEC if big else None,
                                  details={"median_breakdown": detail}))
            figures.append(Figure("throughput: instances/s (ours)", f"N={n}", "inst/s", [n / w for w in walls]))
            figures.append(Figure("throughput: ms per instance (ours)", f"N={n}", "ms", [w / n * 1000 for w in walls]))
            if raw:
                raw_rates[n] = statistics.median(n / s for s in raw)
                figures.append(Figure("throughput: raw Celery group no-op", f"N={n}", "tasks/s", [n / s for s in raw]))
                target = RATIO_TARGETS.get(n)
                figures.append(Figure("throughput: ours / raw Celery", f"N={n}", "x", ratios,
                                      target_op=">=" if target else None, target_value=target))
            if big or ctx.quick:
                rss = {name: peak_rss_mb(stack.processes[name].pid) for name in ("scheduler", "worker")}
                figures.append(Figure("throughput: scheduler peak RSS", f"N={n}", "MB", [max(rss["scheduler"].values())],
                                      target_op="<", target_value=RSS_TARGET_MB, details={"pids": rss["scheduler"]}))
                figures.append(Figure("throughput: worker process peak RSS (largest)", f"N={n}", "MB", [max(rss["worker"].values())],
                                      target_op="<", target_value=RSS_TARGET_MB, details={"pids": rss["worker"]}))
        for f in figures:
            if f.name == "throughput: instances/s (ours)":
                n = int(f.size.split("=")[1])
                if n in raw_rates:
                    f.details["ratio_of_medians_to_raw_celery"] = f.median / raw_rates[n] if f.median else None
    finally:
        stack.stop_one("noop-worker")
    return figures


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    out = []
    for n, _ in sizes(ctx):
        out += [("throughput: trigger to run success", f"N={n}", "s"), ("throughput: instances/s (ours)", f"N={n}", "inst/s"),
                ("throughput: ms per instance (ours)", f"N={n}", "ms")]
        if n <= RAW_CELERY_UP_TO:
            out += [("throughput: raw Celery group no-op", f"N={n}", "tasks/s"), ("throughput: ours / raw Celery", f"N={n}", "x")]
        if n >= BIG or ctx.quick:
            out += [("throughput: scheduler peak RSS", f"N={n}", "MB"), ("throughput: worker process peak RSS (largest)", f"N={n}", "MB")]
    return out
