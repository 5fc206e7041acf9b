"""6. Graph view: server time for bench_graph (50 tasks, 10 mapped) with one run's states, cold
(no cached layout: Graphviz lays the DAG out) and warm (the cached layout, filled with states).

The layout cache lives under VAR_DIR; each cold sample points VAR_DIR at a fresh empty folder.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.common import (
    Context,
    Figure,
    finish_unmapped,
    finished_run,
    insert_mapped_instances,
    logged_in_client,
    missing,
    timed,
    view_missing,
)

TITLE = "graph"
NEEDS_STACK = False
URL_NAME = "runs:graph"


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    return [("graph: cold (first layout)", "50 tasks, 10 mapped", "ms"), ("graph: warm (cached layout)", "50 tasks, 10 mapped", "ms")]


def run(ctx: Context) -> list[Figure]:
    (cold_name, size, unit), (warm_name, _, _) = expected(ctx)
    reason = view_missing(URL_NAME) or (None if shutil.which("dot") else "graphviz 'dot' not installed")
    if reason:
        return [missing(cold_name, size, unit, reason), missing(warm_name, size, unit, reason, target_op="<", target_value=100)]
    from django.test.utils import override_settings
    from django.urls import reverse

    run_ = finished_run("bench_graph", run_id="bench_graph_run")
    insert_mapped_instances(run_, [f"work_{i}" for i in range(10)], 10 if ctx.quick else 1000)
    finish_unmapped(run_)
    client = logged_in_client()
    url = reverse(URL_NAME, args=[run_.dag_id])
    root = Path(tempfile.mkdtemp(prefix="bench-graph-"))
    repeats = 1 if ctx.quick else 5

    def get() -> None:
        response = client.get(url, {"run_id": run_.run_id})
        if response.status_code != 200 or b"<svg" not in response.content:
            raise RuntimeError(f"GET {url} answered {response.status_code} without an SVG")

    try:
        with override_settings(VAR_DIR=root / "first"):
            get()  # untimed: the first request compiles the templates
        cold = []
        for i in range(repeats):
            with override_settings(VAR_DIR=root / f"cold{i}"):
                cold += timed(get, repeats=1)
        with override_settings(VAR_DIR=root / "warm"):
            warm = timed(get, repeats=1 if ctx.quick else 9, warmup=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [Figure(cold_name, size, unit, cold), Figure(warm_name, size, unit, warm, target_op="<", target_value=100)]
