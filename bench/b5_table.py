"""5. Mapped instances table: one page of 50 out of N instances, filtered by state and sorted by
duration (longest first), through the JSON API and through the task panel page."""
from __future__ import annotations

from bench.common import Context, Figure, big_mapped_run, logged_in_client, missing, timed, view_missing

TITLE = "table"
NEEDS_STACK = False
QUERY = {"state": "success", "order_by": "-duration", "page": "3"}


def size(ctx: Context) -> int:
    return 1000 if ctx.quick else 100_000


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    s = f"50 of {size(ctx)}"
    return [("table: API page (state, -duration)", s, "ms"), ("table: panel page (state, -duration)", s, "ms")]


def run(ctx: Context) -> list[Figure]:
    from django.urls import reverse

    run_ = big_mapped_run(size(ctx))
    client = logged_in_client()
    repeats = 1 if ctx.quick else 9
    figures = []
    for (name, s, unit), url_name, headers in zip(
        expected(ctx),
        ("runs:api_mapped_instances", "runs:task_panel"),
        ({}, {"HTTP_HX_REQUEST": "true"}),
        strict=True,
    ):
        reason = view_missing(url_name)
        if reason:
            figures.append(missing(name, s, unit, reason, target_op="<", target_value=100))
            continue
        url = reverse(url_name, args=[run_.dag_id, run_.run_id, "item"])

        def get(url: str = url, url_name: str = url_name, headers: dict[str, str] = headers) -> None:
            response = client.get(url, QUERY, **headers)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url} answered {response.status_code}")
            if url_name == "runs:api_mapped_instances" and len(response.json()["instances"]) != 50:
                raise RuntimeError(f"GET {url} did not return a page of 50")

        figures.append(Figure(name, s, unit, timed(get, repeats=repeats, warmup=1), target_op="<", target_value=100))
    return figures
