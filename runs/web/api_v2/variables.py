"""Variables: read by a Viewer, written by an Admin."""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError

from dagsapp.jsonvalues import json_problem
from runs.models import Variable
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


def _check(value: Any) -> None:
    problem = json_problem(value)
    if problem:
        raise HttpError(400, f"value {problem}")


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
    require(request, "admin")
    _check(body.value)
    try:
        with transaction.atomic():
            var = Variable.objects.create(key=body.key, val=body.value, description=body.description or "")
    except IntegrityError:
        raise HttpError(409, f"The Variable with key: `{body.key}` already exists") from None
    return Status(201, variable_json(var))


@router.patch("/variables/{variable_key}", response=VariableResponse, summary="Patch Variable")
def patch_variable(request: HttpRequest, variable_key: str, body: VariablePatchBody,
                   update_mask: Query[list[str] | None] = None) -> dict[str, Any]:
    require(request, "admin")
    var = _get_or_404(variable_key)
    if body.key is not None and body.key != variable_key:
        raise HttpError(400, "Invalid body, key from request body doesn't match uri parameter")
    fields = set(update_mask or ["value", "description"])
    if "value" in fields:
        _check(body.value)
        var.val = body.value
    if "description" in fields:
        var.description = body.description or ""
    var.save(update_fields=["val", "description"])
    return variable_json(var)


@router.delete("/variables/{variable_key}", response={204: None}, summary="Delete Variable")
def delete_variable(request: HttpRequest, variable_key: str) -> Status[None]:
    require(request, "admin")
    _get_or_404(variable_key).delete()
    return Status(204, None)
