"""9. The triggerer: N instances deferred at once on one triggerer, each a 5 s TimeDeltaTrigger.

Runs bench_deferral (N start-from-trigger indexes, each ending from its trigger) with the
scheduler, the worker and one triggerer (capacity N). Figures: the triggerer's peak RSS (VmHWM
of its process, read before it stops) and, per instance, the time from its trigger's moment
(read from the stored trigger while it waits) to its success (``end_date``).
"""
from __future__ import annotations

import time
import uuid

from bench.common import Context, Figure, engine_stack, percentile, wait_for_run

TITLE = "triggerer"
NEEDS_STACK = True


def size(ctx: Context) -> int:
    return 200 if ctx.quick else 10_000


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def run(ctx: Context) -> list[Figure]:


    from dagsapp.triggers import decode_value
    from runs.models import TaskInstance, Trigger
    from runs.processes import triggerer_argv
    from runs.services import create_dag_run

    n = size(ctx)
    delta = 2.0 if ctx.quick else 5.0
    stack = engine_stack(ctx.env)
    stack.start("triggerer", triggerer_argv(capacity=n + 100))
    try:
        run = create_dag_run(dag_id="bench_deferral", run_id=f"bench_deferral_{uuid.uuid4().hex[:8]}", conf={"n": n, "delta": delta})
        # The moment each trigger fires, read while they wait (a fired trigger's row is gone).
        moments: dict[int, float] = {}
        deadline = time.monotonic() + 120
        while len(moments) < n and time.monotonic() < deadline:
            for ti_id, kwargs in Trigger.objects.filter(task_instances__dag_run_id=run.pk).values_list("task_instances__id", "kwargs"):
                if ti_id not in moments:
                    moments[ti_id] = decode_value(kwargs)["moment"].timestamp()
            time.sleep(0.2)
        done = wait_for_run(run.pk, timeout=300)
        if done.state != "success":
            raise RuntimeError(f"bench_deferral run ended {done.state}")
        peak = _peak_rss_mb(stack.processes["triggerer"].pid)
    finally:
        stack.stop_one("triggerer")
    ends = dict(TaskInstance.objects.filter(dag_run_id=run.pk, task_id="wait").values_list("pk", "end_date"))
    samples = [(ends[pk].timestamp() - moment) * 1000 for pk, moment in moments.items() if ends.get(pk) is not None]
    if len(samples) < n:
        raise RuntimeError(f"only {len(samples)} of {n} trigger moments were seen while waiting")

    label = f"N={n}"
    return [
        Figure("triggerer: peak RSS", label, "MB", [peak], target_op="<", target_value=300 if not ctx.quick else None),
        Figure("triggerer: fire -> success", label, "ms", samples, target_op="<", target_value=250,
               details={"p95_ms": percentile(samples, 95)}),
        Figure("triggerer: fire -> success p95", label, "ms", [percentile(samples, 95)]),
    ]


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    label = f"N={size(ctx)}"
    return [("triggerer: peak RSS", label, "MB"), ("triggerer: fire -> success", label, "ms"),
            ("triggerer: fire -> success p95", label, "ms")]
