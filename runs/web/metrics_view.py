"""``/metrics`` for Prometheus: from this host's addresses, or with the metrics token (settings)."""
from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from runs import metrics


def _is_local(request: HttpRequest) -> bool:
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _has_token(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(given.encode(), str(token).encode())


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not (_has_token(request) or (settings.METRICS_ALLOW_LOCAL and _is_local(request))):
        return HttpResponseForbidden("Metrics need the metrics token (METRICS_TOKEN) or a request from this host.",
                                     content_type="text/plain")
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
