"""The NinjaAPI object: routers, authentication, and errors as ``{"detail": ...}``."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, register_converter
from ninja import NinjaAPI
from ninja.errors import AuthenticationError

from runs.services import DagRunError, ParamsError
from runs.web.api_v2.auth import API_AUTH
from runs.web.views.common import MapIndexConverter

# -1 or an index that fits the column, in a path such as .../taskInstances/{task_id}/{map_index};
# before the routers' paths are compiled.
register_converter(MapIndexConverter, "mapindex")

api = NinjaAPI(
    title="dagsapp: Airflow REST API v2",
    version="2",
    description="Apache Airflow 3.3's REST API, the subset this product has. Authenticate with a token from "
                "POST /auth/token (Authorization: Bearer ...) or the dashboard's session.",
    urls_namespace="api_v2",
    auth=API_AUTH,
    docs_url="/docs",
    openapi_url="/openapi.json",
)

from runs.web.api_v2 import dag_runs, dags, monitor, task_instances, variables, xcoms  # noqa: E402 - after the converter

for module in (dags, dag_runs, task_instances, xcoms, variables, monitor):
    api.add_router("", module.router)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else "Not Found"
    return api.create_response(request, {"detail": detail}, status=404)


@api.exception_handler(DagRunError)
def refused(request: HttpRequest, exc: DagRunError) -> HttpResponse:
    """A request the engine refuses (a run id taken, a conf PostgreSQL cannot store, a conf the
    DAG's Params refuse: then also one message per param under ``params``)."""
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, ParamsError):
        body["params"] = exc.errors
    return api.create_response(request, body, status=400)


@api.exception_handler(AuthenticationError)
def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"detail": "Not authenticated"}, status=401)


def _head_and_json_405(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """HEAD wherever GET is allowed (the server sends no body), and a 405 in JSON with its Allow
    header, like every other error of the API."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        head = request.method == "HEAD"
        if head:
            request.method = "GET"
        try:
            response = view(request, *args, **kwargs)
        finally:
            if head:
                request.method = "HEAD"
        if response.status_code == 405:
            allowed = response.get("Allow", "")
            response = JsonResponse({"detail": "Method Not Allowed"}, status=405)
            response["Allow"] = ", ".join([*allowed.split(", "), "HEAD"] if "GET" in allowed else [allowed])
        return response

    return wrapper


def urls(ninja_api: NinjaAPI) -> tuple[list[URLPattern], str, str]:
    """``ninja_api.urls`` with each view wrapped by _head_and_json_405, for ``path(..., urls(api))``."""
    patterns, app_name, namespace = ninja_api.urls
    wrapped = [URLPattern(p.pattern, _head_and_json_405(p.callback), p.default_args, p.name)
               for p in patterns if isinstance(p, URLPattern)]
    return wrapped, app_name, namespace
