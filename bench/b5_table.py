"""5. Mapped instances table: one page of 50 out of N instances, filtered by state and sorted by
duration (longest first), through the JSON API, the task panel page, and Airflow's REST API v2
(``listMapped``, the page a client written for Airflow asks for)."""
from __future__ import annotations

from typing import Any

from bench.common import Context, Figure, big_mapped_run, logged_in_client, missing, timed, view_missing

TITLE = "table"
NEEDS_STACK = False
QUERY = {"state": "success", "order_by": "-duration", "page": "3"}
# The same page in Airflow's terms.
LIST_MAPPED_QUERY = {"state": "success", "order_by": "-duration", "limit": "50", "offset": "100"}


def size(ctx: Context) -> int:
    return 1000 if ctx.quick else 1_000_000


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    s = f"50 of {size(ctx)}"
    return [("table: API page (state, -duration)", s, "ms"), ("table: panel page (state, -duration)", s, "ms"),
            ("table: API v2 listMapped (state, -duration)", s, "ms")]


def run(ctx: Context) -> list[Figure]:
    from django.urls import reverse

    run_ = big_mapped_run(size(ctx))
    client = logged_in_client()
    repeats = 1 if ctx.quick else 9
    figures = []
    for (name, s, unit), url_name, headers in zip(
        expected(ctx)[:2],
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
    figures.append(_list_mapped(ctx, run_, client, repeats))
    return figures


def _list_mapped(ctx: Context, run_: Any, client: Any, repeats: int) -> Figure:
    name, s, unit = expected(ctx)[2]
    reason = view_missing("api_v2:get_mapped_task_instances")
    if reason:
        return missing(name, s, unit, reason, target_op="<", target_value=100)
    url = f"/api/v2/dags/{run_.dag_id}/dagRuns/{run_.run_id}/taskInstances/item/listMapped"

    def get() -> None:
        response = client.get(url, LIST_MAPPED_QUERY)
        if response.status_code != 200 or len(response.json()["task_instances"]) != 50:
            raise RuntimeError(f"GET {url} answered {response.status_code} without a page of 50")

    return Figure(name, s, unit, timed(get, repeats=repeats, warmup=1), target_op="<", target_value=100)
