"""2. Expansion: runs.scheduling.steps.expand_mapped_task from the -1 placeholder to N rows, ready to queue.

The upstream's length is recorded directly (a TaskMap row, with the item identities its worker
computes), as if it had just succeeded; the timing covers the expansion and its commit, as inside
the scheduler's pass over a run (reading the identities and copying one into each instance included).
"""
from __future__ import annotations

import time
import uuid

from bench.common import Context, Figure, finished_run

TITLE = "expansion"
NEEDS_STACK = False


def sizes(ctx: Context) -> list[tuple[int, int]]:
    if ctx.quick:
        return [(1000, 1)]
    if ctx.sizes:
        return [(n, 3 if n >= 1_000_000 else 5) for n in ctx.sizes]
    return [(1000, 5), (10_000, 5), (100_000, 5), (1_000_000, 3)]


def expand_once(n: int) -> float:
    from django.db import transaction
    from django.test.utils import override_settings

    from dagsapp.identity import DEFAULT_IDENTITIES, item_identities
    from runs.models import DagRun, TaskInstance, TaskInstanceState, TaskMap
    from runs.scheduling.steps import expand_mapped_task

    run = finished_run("bench_throughput", run_id=f"bench_expand_{n}_{uuid.uuid4().hex[:8]}")
    TaskInstance.objects.filter(dag_run=run, task_id="numbers").update(state=TaskInstanceState.SUCCESS, try_number=1)
    TaskMap.objects.create(dag_run=run, task_id="numbers", map_index=-1, length=n,
                           identities={DEFAULT_IDENTITIES: item_identities(list(range(n)))})
    run = DagRun.objects.select_related("serialized_dag").get(pk=run.pk)
    data = run.serialized_dag.data
    with override_settings(MAX_MAP_LENGTH=max(n, 1024)):
        t0 = time.perf_counter()
        with transaction.atomic():
            created = expand_mapped_task(dag_run=run, data=data, task_id="add")
        elapsed = time.perf_counter() - t0
    if created != n:
        raise RuntimeError(f"expand_mapped_task created {created} instances, expected {n}")
    return elapsed


def run(ctx: Context) -> list[Figure]:
    figures = []
    for n, repeats in sizes(ctx):
        samples = [expand_once(n) for _ in range(repeats)]
        target = {100_000: 1.5, 1_000_000: 15.0}.get(n)
        figures.append(Figure("expansion: placeholder -> N rows", f"N={n}", "s", samples,
                              target_op="<" if target else None, target_value=target))
    return figures


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    return [("expansion: placeholder -> N rows", f"N={n}", "s") for n, _ in sizes(ctx)]
