"""9. The run view and the Gantt of one run (issue 12): server time of the run panel (htmx), the
Gantt page, and the Gantt with its mapped task opened (one page of 50 instances), for a run whose
mapped task has N instances. Also the queries per request, which must not grow with N."""
from __future__ import annotations

from typing import Any

from bench.common import Context, Figure, big_mapped_run, logged_in_client, missing, timed, view_missing

TITLE = "run views"
NEEDS_STACK = False
VIEWS = (
    ("run view: panel (htmx)", "runs:run_panel", {}, {"HTTP_HX_REQUEST": "true"}),
    ("gantt: page", "runs:run_gantt", {}, {}),
    ("gantt: mapped task opened", "runs:run_gantt", {"expand": "item"}, {}),
)


def sizes(ctx: Context) -> list[int]:
    return [100, 1000] if ctx.quick else [1000, 100_000]


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    return [(f"{name}{suffix}", f"{n} instances", unit) for name, *_ in VIEWS for n in sizes(ctx)
            for suffix, unit in (("", "ms"), (" queries", "queries"))]


def run(ctx: Context) -> list[Figure]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client = logged_in_client()
    figures: list[Figure] = []
    for name, url_name, query, headers in VIEWS:
        reason = view_missing(url_name)
        if reason:
            figures += [missing(n, s, u, reason) for n, s, u in expected(ctx) if n.startswith(name)]
            continue
        counts: list[Figure] = []
        for n in sizes(ctx):
            run_ = big_mapped_run(n)
            url = reverse(url_name, args=[run_.dag_id, run_.run_id])

            def get(url: str = url, query: dict[str, str] = query, headers: dict[str, Any] = headers) -> None:
                response = client.get(url, query, **headers)
                if response.status_code not in (200, 286):
                    raise RuntimeError(f"GET {url} answered {response.status_code}")

            samples = timed(get, repeats=1 if ctx.quick else 9, warmup=1)
            with CaptureQueriesContext(connection) as queries:
                get()
            figures.append(Figure(name, f"{n} instances", "ms", samples, target_op="<", target_value=150))
            counts.append(Figure(f"{name} queries", f"{n} instances", "queries", [len(queries)]))
            figures.append(counts[-1])
        # Target: the same query count at both sizes.
        counts[1].target_op, counts[1].target_value = "==", counts[0].samples[0]
    return figures
