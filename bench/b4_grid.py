"""4. Grid view: server time of the page and of its htmx refresh, 25 runs x 10 tasks (5 mapped),
at 1,000, 10,000 and 100,000 instances per mapped task, through Django's test Client in this process.
Also the number of SQL queries per request, which must not grow with the instances.

The largest size is 12.5 million task instances: it is inserted once (about 10 minutes on this
machine) and kept by later invocations (bench.common.SEEDED_DAGS), which check it is whole."""
from __future__ import annotations

from typing import Any

from bench.common import (
    Context,
    Figure,
    analyze,
    delete_runs,
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
        ("bench_grid_small", 1000), ("bench_grid_large", 10_000), ("bench_grid_huge", 100_000)]


def repeats(ctx: Context) -> int:
    return 1 if ctx.quick else 15


def build(dag_id: str, per_task: int) -> None:
    if seeded(dag_id, per_task):
        return
    delete_runs(dag_id)
    for r in range(NUM_RUNS):
        run = finished_run(dag_id, run_id=f"bench_{r:02d}", offset_minutes=r)
        insert_mapped_instances(run, MAPPED_TASKS, per_task)
        finish_unmapped(run)
        freeze_summary(run)


def seeded(dag_id: str, per_task: int) -> bool:
    """The DAG's 25 runs are there from an earlier invocation, each with per_task instances of
    every mapped task (read from their frozen summaries, not counted again)."""
    from runs.models import DagRun

    runs = list(DagRun.objects.filter(dag_id=dag_id).values_list("state_summary", flat=True))
    if len(runs) != NUM_RUNS or any(s is None for s in runs):
        return False
    for summary in runs:
        per = {t: 0 for t in MAPPED_TASKS}
        for task_id, _state, n, placeholders, *_ in summary:
            if task_id in per:
                per[task_id] += n - placeholders
        if any(n != per_task for n in per.values()):
            return False
    return True


def measure(client: Any, urls: list[str], n: int, **headers: str) -> tuple[list[list[float]], list[int]]:
    """Samples of each URL, taken round-robin (one of each, then again), so that the machine's drift
    over the minutes of a measurement falls on every size alike: sizes measured one after another
    once differed by 1.6x on an idle machine, on pages that read the same frozen summaries."""
    import functools
    import gc

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def get(url: str) -> None:
        response = client.get(url, **headers)
        if response.status_code not in (200, 286):
            raise RuntimeError(f"GET {url} answered {response.status_code}")

    for url in urls:
        get(url)
    samples: list[list[float]] = [[] for _ in urls]
    for _ in range(n):
        for i, url in enumerate(urls):
            # A collection of the previous request's garbage is not this request's cost.
            gc.collect()
            samples[i] += timed(functools.partial(get, url), repeats=1)
    counts = []
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            get(url)
        counts.append(len(queries))
    return samples, counts


# The Grid's own request, and its 2-second htmx refresh of the grid body.
REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("page", {}), ("htmx refresh", {"HTTP_HX_REQUEST": "true", "HTTP_HX_TRIGGER": "grid-body", "HTTP_HX_TARGET": "grid-body"})]


def expected_figures(title: str, labels: list[str]) -> list[tuple[str, str, str]]:
    """The figures ``grid_figures`` gives for Grids of these sizes (labels)."""
    out = []
    for what, _ in REQUESTS:
        out += [f for label in labels for f in ((f"{title}: {what}", label, "ms"), (f"{title}: {what} queries", label, "queries"))]
        out.append((f"{title}: {what} slowest / fastest median", f"{len(labels)} sizes", "ratio"))
    return out


def grid_figures(title: str, dag_ids: list[str], labels: list[str], repeats: int) -> list[Figure]:
    """Each DAG's Grid page and refresh, sizes round-robin. Targets: under 100 ms; the same query
    count at every size; medians within 20 % of each other."""
    from django.urls import reverse

    client = logged_in_client()
    urls = [reverse(URL_NAME, args=[dag_id]) for dag_id in dag_ids]
    figures: list[Figure] = []
    for what, headers in REQUESTS:
        all_samples, query_counts = measure(client, urls, repeats, **headers)
        timings = [Figure(f"{title}: {what}", label, "ms", samples, target_op="<", target_value=100)
                   for label, samples in zip(labels, all_samples, strict=True)]
        counts = [Figure(f"{title}: {what} queries", label, "queries", [nq]) for label, nq in zip(labels, query_counts, strict=True)]
        for c in counts[1:]:
            c.target_op, c.target_value = "==", counts[0].samples[0]
        for timing, count in zip(timings, counts, strict=True):
            figures += [timing, count]
        medians = [f.median for f in timings if f.median is not None]
        if len(medians) > 1:
            figures.append(Figure(f"{title}: {what} slowest / fastest median", f"{len(medians)} sizes", "ratio",
                                  [max(medians) / min(medians)], target_op="<=", target_value=1.2))
    return figures


def _labels(ctx: Context) -> list[str]:
    return [f"25x10, {per}/mapped" for _, per in sizes(ctx)]


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    return expected_figures("grid", _labels(ctx))


def run(ctx: Context) -> list[Figure]:
    reason = view_missing(URL_NAME)
    if reason:
        return [missing(n, s, u, reason) for n, s, u in expected(ctx)]
    for dag_id, per in sizes(ctx):
        build(dag_id, per)
        analyze()
    return grid_figures("grid", [dag_id for dag_id, _ in sizes(ctx)], _labels(ctx), repeats(ctx))
