"""Lookups, permissions and request parsing shared by the dashboard's views."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import reverse
from django_htmx.middleware import HtmxDetails

from dagsapp.serialization import TaskData
from runs.models import DagModel, DagRun, TaskInstance
from runs.roles import user_role
from runs.templatetags.runs_tags import url_with
from runs.web.queries import find_dag, find_dag_run, find_task_instance
from runs.web.views.errors import json_error

V = TypeVar("V", bound=Callable[..., HttpResponse])


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class MapIndexConverter:
    """-1 (an unmapped task) or an index that fits the column; anything else is a 404, never a 500."""

    regex = r"-1|0|[1-9][0-9]{0,8}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


def is_operator(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Operator or Admin (runs/roles.py); the role is cached on the user object: a page asks
    several times, the database once."""
    return user_role(user) in ("operator", "admin")


def operator_required(view: V) -> V:
    """Logged in and in the Operator group (or superuser); a Viewer gets 403 and nothing runs."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_operator(request.user):
            return HttpResponseForbidden("Only Operators may do this.")
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def api_login_required(view: V) -> V:
    """For the JSON API: 401 with a JSON body instead of a redirect to the login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return json_error(401, "authentication required")
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


SAFE_METHODS = ("GET", "HEAD")


def api_require_safe(view: V) -> V:
    """require_safe for the JSON API: GET and HEAD, anything else a 405 in JSON."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            response = json_error(405, f"method {request.method} is not allowed; the API is read-only")
            response["Allow"] = ", ".join(SAFE_METHODS)
            return response
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def get_dag_or_404(dag_id: str) -> DagModel:
    dag = find_dag(dag_id)
    if dag is None or dag.latest_serialized is None:
        raise Http404(f"No DAG {dag_id!r}")
    return dag


def get_dag_run_or_404(dag_id: str, run_id: str) -> DagRun:
    run = find_dag_run(dag_id, run_id)
    if run is None:
        raise Http404(f"No run {run_id!r} of DAG {dag_id!r}")
    return run


def get_task_or_404(run: DagRun, task_id: str) -> TaskData:
    """The serialized task, from the version of the DAG this run was created with."""
    task = run.serialized_dag.dag_data()["tasks"].get(task_id)
    if task is None:
        raise Http404(f"No task {task_id!r} in DAG {run.dag_id!r}")
    return task


def get_task_instance_or_404(run: DagRun, task_id: str, map_index: int) -> TaskInstance:
    ti = find_task_instance(run, task_id, map_index)
    if ti is None:
        raise Http404(f"No instance {task_id}[{map_index}] in run {run.run_id!r}")
    return ti


def reverse_with_query(viewname: str, *args: object, query: Mapping[str, object]) -> str:
    """reverse() with a query string, empty values left out (the templates' url_query tag does the same)."""
    return url_with(reverse(viewname, args=args), dict(query))


def map_index_param(request: HttpRequest) -> int | None:
    """The last non-empty ``map_index`` (the dropdown and, for huge N, a number box share the name)."""
    raw = next((v for v in reversed(request.GET.getlist("map_index")) if v.strip()), None)
    value = int_param(raw, default=-2, minimum=-2, maximum=10**9)
    return value if value >= -1 else None


def int_param(raw: str | None, *, default: int, minimum: int, maximum: int) -> int:
    """A query-string integer clamped to [minimum, maximum]; garbage falls back to the default."""
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    return max(minimum, min(maximum, value))
