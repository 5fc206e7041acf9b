"""Variables: read by a Viewer, written by an Operator or Admin (Airflow's simple auth manager gives
Variables to its Op role), through runs/services.py like the dashboard's Variables page."""
from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError

from runs import services
from runs.models import Variable
from runs.services import VariableError, create_variable, update_variable
from runs.web.api_v2.auth import require
from runs.web.api_v2.params import Page, like_pattern, ordering
from runs.web.api_v2.responses import variable_json
from runs.web.api_v2.schemas import VariableBody, VariableCollectionResponse, VariablePatchBody, VariableResponse

router = Router(tags=["Variable"])

VARIABLE_ORDER = {"key": "key", "id": "id", "_val": "key", "description": "description", "is_encrypted": "key"}


class VariableFilters(Schema):
    variable_key_pattern: str | None = None
    variable_key_prefix_pattern: str | None = None
    order_by: list[str] | None = None


def _get_or_404(key: str) -> Variable:
    var = Variable.objects.filter(key=key).first()
    if var is None:
        raise Http404(f"The Variable with key: `{key}` was not found")
    return var


@router.get("/variables", response=VariableCollectionResponse, summary="Get Variables")
def get_variables(request: HttpRequest, page: Query[Page], filters: Query[VariableFilters]) -> dict[str, Any]:
    qs = Variable.objects.filter(like_pattern(filters.variable_key_pattern, "key"),
                                 like_pattern(filters.variable_key_prefix_pattern, "key", prefix=True))
    qs = qs.order_by(*ordering(filters.order_by, VARIABLE_ORDER, default="id"))
    return {"variables": [variable_json(v) for v in page.slice(qs)], "total_entries": qs.count()}


@router.get("/variables/{variable_key}", response=VariableResponse, summary="Get Variable")
def get_variable(request: HttpRequest, variable_key: str) -> dict[str, Any]:
    return variable_json(_get_or_404(variable_key))


@router.post("/variables", response={201: VariableResponse}, summary="Post Variable")
def post_variable(request: HttpRequest, body: VariableBody) -> Status[dict[str, Any]]:
    require(request, "operator")
    if Variable.objects.filter(key=body.key).exists():
        raise HttpError(409, f"The Variable with key: `{body.key}` already exists")
    try:
        var = create_variable(key=body.key, value=body.value, description=body.description or "")
    except VariableError as exc:
        # A concurrent create of the same key lands here too: the unique key refused it.
        raise HttpError(409 if "already exists" in str(exc) else 400, str(exc)) from None
    return Status(201, variable_json(var))


@router.patch("/variables/{variable_key}", response=VariableResponse, summary="Patch Variable")
def patch_variable(request: HttpRequest, variable_key: str, body: VariablePatchBody,
                   update_mask: Query[list[str] | None] = None) -> dict[str, Any]:
    require(request, "operator")
    var = _get_or_404(variable_key)
    if body.key is not None and body.key != variable_key:
        raise HttpError(400, "Invalid body, key from request body doesn't match uri parameter")
    fields = set(update_mask or ["value", "description"])
    try:
        update_variable(var, value=body.value, set_value="value" in fields,
                        description=(body.description or "") if "description" in fields else None)
    except VariableError as exc:
        raise HttpError(400, str(exc)) from None
    return variable_json(var)


@router.delete("/variables/{variable_key}", response={204: None}, summary="Delete Variable")
def delete_variable(request: HttpRequest, variable_key: str) -> Status[None]:
    require(request, "operator")
    services.delete_variable(_get_or_404(variable_key))
    return Status(204, None)
