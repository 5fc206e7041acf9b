"""Error responses: the JSON API answers its errors in JSON, the pages with Django's own pages.

Installed as the project's ``handler400/403/404/500`` (config/urls.py), so a URL under ``/api/``
that matches no view, an ``Http404`` from a lookup and an unexpected exception all reach an API
client as ``{"detail": ...}`` instead of an HTML page.
"""
from __future__ import annotations

from http import HTTPStatus

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def json_error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def _detail(exception: Exception | None, status: HTTPStatus) -> str:
    # An Http404's message names what was looked up ("No run 'x' of DAG 'y'"); others may carry
    # internals, so they get the status's phrase only.
    if isinstance(exception, Http404) and exception.args and isinstance(exception.args[0], str):
        return exception.args[0]
    return status.phrase


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return json_error(400, _detail(exception, HTTPStatus.BAD_REQUEST))
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return json_error(403, _detail(exception, HTTPStatus.FORBIDDEN))
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return json_error(404, _detail(exception, HTTPStatus.NOT_FOUND))
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return json_error(500, HTTPStatus.INTERNAL_SERVER_ERROR.phrase)
    return defaults.server_error(request)
