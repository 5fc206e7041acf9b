"""DAG runs: list, get, trigger, patch state, clear, wait until finished."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from runs.models import DagModel, DagRun, DagRunState, XCom
from runs.services import clear_dag_run, create_dag_run, mark_dag_run
from runs.web.api_v2.auth import require
from runs.web.api_v2.params import DateRanges, Page, like_pattern, ordering, range_filter
from runs.web.api_v2.responses import Versions, dag_run_json
from runs.web.api_v2.schemas import (
    DAGRunClearBody,
    DAGRunCollectionResponse,
    DAGRunPatchBody,
    DAGRunResponse,
    TaskInstanceCollectionResponse,
    TriggerDAGRunPostBody,
)
from runs.web.api_v2.selection import changed_instances
from runs.web.queries import find_dag_run

router = Router(tags=["DagRun"])

RUN_ORDER = {"id": "id", "state": "state", "dag_id": "dag_id", "run_id": "run_id", "logical_date": "logical_date",
             "run_after": "logical_date", "start_date": "start_date", "end_date": "end_date", "queued_at": "queued_at",
             "data_interval_start": "data_interval_start", "data_interval_end": "data_interval_end", "run_type": "run_type"}
RUN_RANGES = {"start_date": "start_date", "end_date": "end_date", "logical_date": "logical_date", "run_after": "logical_date",
              "updated_at": None, "duration": None}


class RunFilters(DateRanges):
    state: list[str] | None = None
    run_type: list[str] | None = None
    run_id_pattern: str | None = None
    run_id_prefix_pattern: str | None = None
    dag_id_pattern: str | None = None
    order_by: list[str] | None = None


def get_dag_run_or_404(dag_id: str, run_id: str) -> DagRun:
    run = find_dag_run(dag_id, run_id)
    if run is None:
        raise Http404(f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found")
    return run


@router.get("/dags/{dag_id}/dagRuns", response=DAGRunCollectionResponse, summary="Get Dag Runs")
def get_dag_runs(request: HttpRequest, dag_id: str, page: Query[Page], filters: Query[RunFilters]) -> dict[str, Any]:
    """``~`` as the dag_id lists the runs of every DAG."""
    qs = DagRun.objects.select_related("serialized_dag")
    if dag_id != "~":
        if not DagModel.objects.filter(dag_id=dag_id).exists():
            raise Http404(f"The Dag with ID: `{dag_id}` was not found")
        qs = qs.filter(dag_id=dag_id)
    if filters.state:
        qs = qs.filter(state__in=filters.state)
    if filters.run_type:
        qs = qs.filter(run_type__in=filters.run_type)
    qs = qs.filter(range_filter(filters, RUN_RANGES), like_pattern(filters.run_id_pattern, "run_id"),
                   like_pattern(filters.run_id_prefix_pattern, "run_id", prefix=True), like_pattern(filters.dag_id_pattern, "dag_id"))
    qs = qs.order_by(*ordering(filters.order_by, RUN_ORDER, default="id"))
    versions = Versions()
    return {"dag_runs": [dag_run_json(r, versions) for r in page.slice(qs)], "total_entries": qs.count()}


@router.get("/dags/{dag_id}/dagRuns/{dag_run_id}", response=DAGRunResponse, summary="Get Dag Run")
def get_dag_run(request: HttpRequest, dag_id: str, dag_run_id: str) -> dict[str, Any]:
    return dag_run_json(get_dag_run_or_404(dag_id, dag_run_id), Versions())


@router.post("/dags/{dag_id}/dagRuns", response=DAGRunResponse, summary="Trigger Dag Run")
def trigger_dag_run(request: HttpRequest, dag_id: str, body: TriggerDAGRunPostBody) -> dict[str, Any]:
    require(request, "operator")
    if not DagModel.objects.filter(dag_id=dag_id, is_active=True).exists():
        raise Http404(f"Dag with dag_id: '{dag_id}' not found")
    if body.dag_run_id and DagRun.objects.filter(dag_id=dag_id, run_id=body.dag_run_id).exists():
        raise HttpError(409, f"A DAG Run already exists for DAG {dag_id} with run id {body.dag_run_id}")
    interval = (body.data_interval_start, body.data_interval_end) if body.data_interval_start and body.data_interval_end else None
    run = create_dag_run(dag_id=dag_id, conf=body.conf or {}, logical_date=body.logical_date or body.run_after,
                         run_id=body.dag_run_id, data_interval=interval)
    return dag_run_json(get_dag_run_or_404(dag_id, run.run_id), Versions())


@router.patch("/dags/{dag_id}/dagRuns/{dag_run_id}", response=DAGRunResponse, summary="Patch Dag Run")
def patch_dag_run(request: HttpRequest, dag_id: str, dag_run_id: str, body: DAGRunPatchBody) -> dict[str, Any]:
    require(request, "operator")
    run = get_dag_run_or_404(dag_id, dag_run_id)
    if body.state is not None:
        mark_dag_run(dag_run=run, state=body.state)
    return dag_run_json(get_dag_run_or_404(dag_id, dag_run_id), Versions())


@router.post("/dags/{dag_id}/dagRuns/{dag_run_id}/clear", response={200: TaskInstanceCollectionResponse | DAGRunResponse},
             summary="Clear Dag Run")
def clear_dag_run_view(request: HttpRequest, dag_id: str, dag_run_id: str, body: DAGRunClearBody) -> dict[str, Any]:
    """With ``dry_run`` (the default, as in Airflow) nothing changes: the answer lists the
    instances a clear would run again; without it, they are cleared and the run is returned."""
    require(request, "operator")
    run = get_dag_run_or_404(dag_id, dag_run_id)
    changed = changed_instances([run], lambda: clear_dag_run(dag_run=run, only="failed" if body.only_failed else "all"), dry_run=body.dry_run)
    if body.dry_run:
        return changed
    return dag_run_json(get_dag_run_or_404(dag_id, dag_run_id), Versions())


class WaitParams(Schema):
    # Seconds between two looks at the run; finite, and at most a minute.
    interval: float = Field(gt=0, le=60, allow_inf_nan=False)
    result: list[str] | None = None


def _results(run: DagRun, task_ids: list[str]) -> dict[str, Any]:
    rows = XCom.objects.filter(dag_run=run, task_id__in=task_ids, key="return_value").order_by("task_id", "map_index")
    out: dict[str, Any] = {}
    for task_id, map_index, value in rows.values_list("task_id", "map_index", "value"):
        # A mapped task's results come as the list of its indexes' values, as Airflow returns them.
        if map_index >= 0:
            out.setdefault(task_id, []).append(value)
        else:
            out[task_id] = value
    return out


def _wait_lines(run: DagRun, params: WaitParams) -> Iterator[dict[str, Any]]:
    while True:
        run.refresh_from_db(fields=["state"])
        if run.state in (DagRunState.SUCCESS, DagRunState.FAILED):
            final: dict[str, Any] = {"state": run.state}
            if params.result:
                final["results"] = _results(run, params.result)
            yield final
            return
        yield {"state": run.state}
        time.sleep(params.interval)


@router.get("/dags/{dag_id}/dagRuns/{dag_run_id}/wait", summary="Experimental: Wait for a dag run to complete",
            response={200: dict[str, Any]}, tags=["experimental"])
def wait_dag_run_until_finished(request: HttpRequest, dag_id: str, dag_run_id: str, params: Query[WaitParams]) -> HttpResponse | StreamingHttpResponse:
    """As Airflow's: ``application/x-ndjson`` streams one line per interval until the run has
    finished; any other Accept gets the last line only, once it has."""
    run = get_dag_run_or_404(dag_id, dag_run_id)
    lines = _wait_lines(run, params)
    if "application/x-ndjson" in request.headers.get("Accept", ""):
        return StreamingHttpResponse((json.dumps(line) + "\n" for line in lines), content_type="application/x-ndjson")
    last: dict[str, Any] = {}
    for last in lines:  # noqa: B007 - only the final line is answered
        pass
    return JsonResponse(last)

