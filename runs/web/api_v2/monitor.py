"""Version, health and import errors."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema

from runs import heartbeats
from runs.models import DagImportError, Job, JobType
from runs.web.api_v2.params import Page, like_pattern, ordering
from runs.web.api_v2.responses import BUNDLE_NAME
from runs.web.api_v2.schemas import HealthInfoResponse, ImportErrorCollectionResponse, ImportErrorResponse, VersionInfo

router = Router()

# The Airflow API version this server follows; clients compare it with their own.
AIRFLOW_API_VERSION = "3.3.2"


@router.get("/version", response=VersionInfo, summary="Get Version", tags=["Version"], auth=None)
def get_version(request: HttpRequest) -> dict[str, Any]:
    return {"version": AIRFLOW_API_VERSION, "git_version": None}


@router.get("/monitor/health", response=HealthInfoResponse, summary="Get Health", tags=["Monitor"], auth=None)
def get_health(request: HttpRequest) -> dict[str, Any]:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        database = "healthy"
    except DatabaseError:
        database = "unhealthy"
    scheduler = heartbeats.latest("scheduler") if database == "healthy" else None
    processor = heartbeats.latest("dag_processor") if database == "healthy" else None
    # The triggerers heartbeat in their Job rows (runs/triggering); the newest alive one counts.
    triggerer = (Job.objects.filter(job_type=JobType.TRIGGERER, end_date__isnull=True).order_by("-heartbeat_at")
                 .values_list("heartbeat_at", flat=True).first() if database == "healthy" else None)
    return {
        "metadatabase": {"status": database},
        "scheduler": {"status": heartbeats.status(scheduler), "latest_scheduler_heartbeat": _iso(scheduler)},
        "triggerer": {"status": heartbeats.status(triggerer), "latest_triggerer_heartbeat": _iso(triggerer)},
        "dag_processor": {"status": heartbeats.status(processor), "latest_dag_processor_heartbeat": _iso(processor)},
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _error_json(e: DagImportError) -> dict[str, Any]:
    return {"import_error_id": e.pk, "timestamp": e.timestamp, "filename": e.filename, "bundle_name": BUNDLE_NAME,
            "stack_trace": e.stacktrace}


class ImportErrorFilters(Schema):
    filename_pattern: str | None = None
    filename_prefix_pattern: str | None = None
    order_by: list[str] | None = None


IMPORT_ERROR_ORDER = {"id": "id", "import_error_id": "id", "timestamp": "timestamp", "filename": "filename"}


@router.get("/importErrors", response=ImportErrorCollectionResponse, summary="Get Import Errors", tags=["Import Error"])
def get_import_errors(request: HttpRequest, page: Query[Page], filters: Query[ImportErrorFilters]) -> dict[str, Any]:
    qs = DagImportError.objects.filter(like_pattern(filters.filename_pattern, "filename"),
                                       like_pattern(filters.filename_prefix_pattern, "filename", prefix=True))
    qs = qs.order_by(*ordering(filters.order_by, IMPORT_ERROR_ORDER, default="id"))
    return {"import_errors": [_error_json(e) for e in page.slice(qs)], "total_entries": qs.count()}


@router.get("/importErrors/{int:import_error_id}", response=ImportErrorResponse, summary="Get Import Error", tags=["Import Error"])
def get_import_error(request: HttpRequest, import_error_id: int) -> dict[str, Any]:
    e = DagImportError.objects.filter(pk=import_error_id).first()
    if e is None:
        raise Http404(f"The ImportError with import_error_id: `{import_error_id}` was not found")
    return _error_json(e)
