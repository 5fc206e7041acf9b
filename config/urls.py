from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from runs.web.api_v2.api import api, urls
from runs.web.api_v2.auth import token_api
from runs.web.metrics_view import metrics_view


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and tools ask for /favicon.ico whatever the page links: the SVG icon, for everyone."""
    return HttpResponse((settings.BASE_DIR / "static" / "favicon.svg").read_bytes(), content_type="image/svg+xml")


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    # Airflow 3's REST API v2 and its simple auth manager's token endpoint (runs/web/api_v2/).
    path("api/v2/", urls(api)),
    path("auth/", urls(token_api)),
    path("metrics", metrics_view, name="metrics"),
    # Users and their role, for Admins (runs/admin.py); the audit log read-only.
    path("admin/", admin.site.urls),
    path("", include("runs.web.urls")),
]

# The JSON API answers its errors in JSON; pages get Django's own error pages.
handler400 = "runs.web.views.errors.bad_request"
handler403 = "runs.web.views.errors.permission_denied"
handler404 = "runs.web.views.errors.page_not_found"
handler500 = "runs.web.views.errors.server_error"
