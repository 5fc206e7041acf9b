from __future__ import annotations

from django.urls import URLPattern, URLResolver

app_name = "runs"

urlpatterns: list[URLPattern | URLResolver] = [
    # graph & durations (helper)
    # end graph & durations (helper)
]
