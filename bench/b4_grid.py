"""4. Grid view: server time of the page and of its htmx refresh, 25 runs x 10 tasks (5 mapped),
at 1,000 and at 10,000 instances per mapped task, through Django's test Client in this process.
Also the number of SQL queries per request, which must not grow with the instances."""
from __future__ import annotations

from typing import Any

from bench.common import (
    Context,
    Figure,
    analyze,
    finish_unmapped,
    finished_run,
    freeze_summary,
    insert_mapped_instances,
    logged_in_client,
    missing,
    timed,
    view_missing,
)

TITLE = "grid"
NEEDS_STACK = False
NUM_RUNS = 25
MAPPED_TASKS = [f"work_{i}" for i in range(5)]
URL_NAME = "runs:grid"


def sizes(ctx: Context) -> list[tuple[str, int]]:
    return [("bench_grid_small", 10), ("bench_grid_large", 100)] if ctx.quick else [
        ("bench_grid_small", 1000), ("bench_grid_large", 10_000)]


def repeats(ctx: Context) -> int:
    return 1 if ctx.quick else 7


def build(dag_id: str, per_task: int) -> None:
    for r in range(NUM_RUNS):
        run = finished_run(dag_id, run_id=f"bench_{r:02d}", offset_minutes=r)
        insert_mapped_instances(run, MAPPED_TASKS, per_task)
        finish_unmapped(run)
        freeze_summary(run)


def measure(client: Any, url: str, n: int, **headers: str) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def get() -> None:
        response = client.get(url, **headers)
        if response.status_code not in (200, 286):
            raise RuntimeError(f"GET {url} answered {response.status_code}")

    samples = timed(get, repeats=n, warmup=1)
    with CaptureQueriesContext(connection) as queries:
        get()
    return samples, len(queries)


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    out = []
    for what in ("page", "htmx refresh"):
        for _, per in sizes(ctx):
            size = f"25x10, {per}/mapped"
            out += [(f"grid: {what}", size, "ms"), (f"grid: {what} queries", size, "queries")]
    return out


def run(ctx: Context) -> list[Figure]:
    reason = view_missing(URL_NAME)
    if reason:
        return [missing(n, s, u, reason) for n, s, u in expected(ctx)]
    from django.urls import reverse

    for dag_id, per in sizes(ctx):
        build(dag_id, per)
    analyze()
    client = logged_in_client()
    figures: list[Figure] = []
    for what, headers in (("page", {}), ("htmx refresh", {"HTTP_HX_REQUEST": "true", "HTTP_HX_TRIGGER": "grid-body",
                                                            "HTTP_HX_TARGET": "grid-body"})):
        counts = []
        for dag_id, per in sizes(ctx):
            size = f"25x10, {per}/mapped"
            samples, nq = measure(client, reverse(URL_NAME, args=[dag_id]), repeats(ctx), **headers)
            figures.append(Figure(f"grid: {what}", size, "ms", samples, target_op="<", target_value=150))
            figures.append(Figure(f"grid: {what} queries", size, "queries", [nq]))
            counts.append(figures[-1])
        # Target: the same query count at both sizes.
        counts[1].target_op, counts[1].target_value = "==", counts[0].samples[0]
    return figures
