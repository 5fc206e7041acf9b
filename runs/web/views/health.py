"""``/health``: JSON for monitors and load balancers, without login (and without any secret)."""
from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from runs.web.health import health_report


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    report = health_report()
    status = 200 if report["metadatabase"]["status"] == "healthy" else 503
    response = JsonResponse(report, status=status)
    response["Cache-Control"] = "no-store"
    return response
