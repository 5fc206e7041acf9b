from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("runs.web.urls")),
]

# The JSON API answers its errors in JSON; pages get Django's own error pages.
handler400 = "runs.web.views.errors.bad_request"
handler403 = "runs.web.views.errors.permission_denied"
handler404 = "runs.web.views.errors.page_not_found"
handler500 = "runs.web.views.errors.server_error"
