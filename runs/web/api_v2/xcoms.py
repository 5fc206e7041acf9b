"""XCom entries of an instance: list (with map_index) and one value."""
from __future__ import annotations

import json
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema

from runs.models import DagRun, XCom
from runs.web.api_v2.dag_runs import get_dag_run_or_404
from runs.web.api_v2.params import Page, ordering
from runs.web.api_v2.schemas import XComCollectionResponse, XComResponseNative

router = Router(tags=["XCom"])

XCOM = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries"
XCOM_ORDER = {"key": "key", "map_index": "map_index", "task_id": "task_id", "timestamp": "created_at", "id": "id"}


def _json(x: XCom, run: DagRun) -> dict[str, Any]:
    return {"key": x.key, "timestamp": x.created_at, "logical_date": run.logical_date, "run_after": run.logical_date,
            "map_index": x.map_index, "task_id": x.task_id, "dag_id": run.dag_id, "run_id": run.run_id,
            "dag_display_name": run.dag_id, "task_display_name": x.task_id}


class XComFilters(Schema):
    xcom_key: str | None = None
    map_index: int | None = None
    order_by: list[str] | None = None


def _entries(run: DagRun, task_id: str) -> QuerySet[XCom]:
    qs = XCom.objects.filter(dag_run=run)
    return qs if task_id == "~" else qs.filter(task_id=task_id)


@router.get(XCOM, response=XComCollectionResponse, summary="Get Xcom Entries")
def get_xcom_entries(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, page: Query[Page],
                     filters: Query[XComFilters]) -> dict[str, Any]:
    """``~`` as the task_id lists the entries of every task of the run."""
    run = get_dag_run_or_404(dag_id, dag_run_id)
    qs = _entries(run, task_id).defer("value", "display")
    if filters.xcom_key is not None:
        qs = qs.filter(key=filters.xcom_key)
    if filters.map_index is not None:
        qs = qs.filter(map_index=filters.map_index)
    qs = qs.order_by(*ordering(filters.order_by, XCOM_ORDER, default="task_id"))
    return {"xcom_entries": [_json(x, run) for x in page.slice(qs)], "total_entries": qs.count()}


class XComEntryParams(Schema):
    map_index: int = -1
    deserialize: bool = False
    stringify: bool = False


@router.get(XCOM + "/{xcom_key}", response=XComResponseNative, summary="Get Xcom Entry")
def get_xcom_entry(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, xcom_key: str,
                   params: Query[XComEntryParams]) -> dict[str, Any]:
    """The value as the dashboard shows it: the masked copy when the try knew secrets it holds."""
    run = get_dag_run_or_404(dag_id, dag_run_id)
    x = (_entries(run, task_id).filter(key=xcom_key, map_index=params.map_index)
         .annotate(shown=Coalesce(F("display"), F("value"))).defer("value", "display").first())
    if x is None:
        raise Http404(f"XCom entry with key: `{xcom_key}` not found")
    value = x.shown
    return {**_json(x, run), "value": json.dumps(value) if params.stringify else value}
