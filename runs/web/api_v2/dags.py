"""DAGs: list (tags, search, paused), get, pause and unpause."""
from __future__ import annotations

from typing import Any, Literal

from django.db.models import Q
from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema

from runs.models import DagModel
from runs.services import set_dag_paused
from runs.web.api_v2.auth import require
from runs.web.api_v2.params import Page, like_pattern, ordering
from runs.web.api_v2.responses import dag_json, import_error_files
from runs.web.api_v2.schemas import DAGCollectionResponse, DAGPatchBody, DAGResponse

router = Router(tags=["DAG"])

DAG_ORDER = {"dag_id": "dag_id", "dag_display_name": "dag_id", "next_dagrun": "next_dagrun", "last_run_state": "dag_id",
             "last_run_start_date": "dag_id", "is_paused": "is_paused", "last_parsed_time": "last_parsed"}


class DagFilters(Schema):
    tags: list[str] | None = None
    tags_match_mode: Literal["any", "all"] | None = None
    dag_id_pattern: str | None = None
    dag_id_prefix_pattern: str | None = None
    dag_display_name_pattern: str | None = None
    dag_display_name_prefix_pattern: str | None = None
    exclude_stale: bool = True
    paused: bool | None = None
    has_import_errors: bool | None = None
    order_by: list[str] | None = None


def _get_dag_or_404(dag_id: str) -> DagModel:
    dag = DagModel.objects.select_related("latest_serialized").filter(dag_id=dag_id).first()
    if dag is None:
        raise Http404(f"Dag with id {dag_id} was not found")
    return dag


@router.get("/dags", response=DAGCollectionResponse, summary="Get Dags")
def get_dags(request: HttpRequest, page: Query[Page], filters: Query[DagFilters]) -> dict[str, Any]:
    qs = DagModel.objects.select_related("latest_serialized")
    if filters.exclude_stale:
        qs = qs.filter(is_active=True)
    if filters.paused is not None:
        qs = qs.filter(is_paused=filters.paused)
    for pattern in (filters.dag_id_pattern, filters.dag_display_name_pattern):
        qs = qs.filter(like_pattern(pattern, "dag_id"))
    for prefix in (filters.dag_id_prefix_pattern, filters.dag_display_name_prefix_pattern):
        qs = qs.filter(like_pattern(prefix, "dag_id", prefix=True))
    if filters.tags:
        # jsonb containment on the latest version's tags: every tag ("all") or any of them.
        if filters.tags_match_mode == "all":
            qs = qs.filter(latest_serialized__data__tags__contains=filters.tags)
        else:
            any_tag = Q()
            for tag in filters.tags:
                any_tag |= Q(latest_serialized__data__tags__contains=[tag])
            qs = qs.filter(any_tag)
    errors = import_error_files()
    if filters.has_import_errors is not None:
        qs = qs.filter(fileloc__in=errors) if filters.has_import_errors else qs.exclude(fileloc__in=errors)
    qs = qs.order_by(*ordering(filters.order_by, DAG_ORDER, default="dag_id"))
    return {"dags": [dag_json(d, import_error_files=errors) for d in page.slice(qs)], "total_entries": qs.count()}


@router.get("/dags/{dag_id}", response=DAGResponse, summary="Get Dag")
def get_dag(request: HttpRequest, dag_id: str) -> dict[str, Any]:
    return dag_json(_get_dag_or_404(dag_id), import_error_files=import_error_files())


@router.patch("/dags/{dag_id}", response=DAGResponse, summary="Patch Dag")
def patch_dag(request: HttpRequest, dag_id: str, body: DAGPatchBody, update_mask: Query[list[str] | None] = None) -> dict[str, Any]:
    require(request, "operator")
    dag = _get_dag_or_404(dag_id)
    # The scheduler creates no scheduled run of a paused DAG (its query filters is_paused).
    set_dag_paused(dag_id=dag.dag_id, is_paused=body.is_paused)
    dag.is_paused = body.is_paused
    return dag_json(dag, import_error_files=import_error_files())
