"""Request checks that apply to every view."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.cache import patch_vary_headers

NUL_REFUSED = "NUL characters are not allowed in a request."


def reject_nul_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """400 for a NUL anywhere in the path, query or form: PostgreSQL text cannot hold one, so any
    lookup with it would fail with a 500 instead of a plain "no such run"."""

    def middleware(request: HttpRequest) -> HttpResponse:
        values = [request.path, *(v for _, vs in request.GET.lists() for v in vs)]
        if request.method == "POST" and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            # The body is read (and kept) first: parsing a multipart form consumes the stream, and
            # a view that reads the raw body afterwards (the REST API's JSON) would get an error.
            request.body  # noqa: B018
            values += [v for _, vs in request.POST.lists() for v in vs]
        if any("\x00" in v for v in values):
            if request.path_info.startswith("/api/"):
                return JsonResponse({"detail": NUL_REFUSED}, status=400)
            return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain")
        return get_response(request)

    return middleware


def content_security_policy_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """The Content-Security-Policy on every response (settings.CONTENT_SECURITY_POLICY): scripts
    only from our static files, so injected markup cannot run script (Django 5.2 has no CSP of its own)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response

    return middleware


def htmx_history_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Back and Forward always get a whole page.

    A URL answers a whole page or, to htmx, a fragment: every response says so (``Vary:
    HX-Request``), or the browser's cache hands the fragment to a Back that reloads the page. htmx
    restoring a page it has no snapshot of sends ``HX-Request`` too, and puts what it gets in
    place of the body: that request is treated as the page request it is. Placed before
    django-htmx's middleware, which reads the header.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.META.get("HTTP_HX_HISTORY_RESTORE_REQUEST") == "true":
            request.META.pop("HTTP_HX_REQUEST", None)
        response = get_response(request)
        patch_vary_headers(response, ("HX-Request",))
        return response

    return middleware
