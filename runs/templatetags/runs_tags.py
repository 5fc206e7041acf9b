"""Formatting for the dashboard's templates. Nothing here marks user data safe (autoescape applies), except
``markdown``, whose HTML nh3 has sanitised (runs/web/docs.py)."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from runs.web import timezones

register = template.Library()


@register.filter
def markdown(text: str | None) -> str:
    """A DAG's or task's ``doc_md`` as HTML, sanitised (runs/web/docs.py)."""
    from runs.web.docs import render_markdown

    return render_markdown(text)


@register.filter
def thousands(value: int) -> str:
    return f"{value:,}"


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON as plain text; the template escapes it like any other string."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


@register.filter
def compact_json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


@register.filter
def json_preview(value: Any, length: int = 90) -> str:
    """Compact JSON cut at ``length`` characters, for a one-line preview of a possibly large value."""
    text = compact_json(value)
    return text if len(text) <= length else text[: max(0, length - 1)] + "…"


@register.filter
def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 1:
        # Mapped instances are often short: "0.0s" for 40 ms would hide every difference.
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.filter
def state_label(state: str | None) -> str:
    if state == "tolerated":
        return "success, failures tolerated"
    return "no status" if state is None or state in ("", "none") else state.replace("_", " ")


@register.simple_tag
def url_with(base: str, params: dict[str, Any], **overrides: Any) -> str:
    """``base`` with the query ``params`` updated by ``overrides``; empty values are dropped."""
    merged = {**params, **overrides}
    query = urlencode([(k, v) for k, v in merged.items() if v not in (None, "")])
    return f"{base}?{query}" if query else base


@register.simple_tag
def url_query(viewname: str, *args: Any, **query: Any) -> str:
    """``{% url %}`` with a query string: ``{% url_query 'runs:grid' dag_id run_id=run.run_id %}``."""
    return url_with(reverse(viewname, args=args), query)


@register.filter
def when(value: datetime | None, form: str = "datetime") -> str:
    """Every time the dashboard shows, in the user's zone and naming it: ``2026-12-01 16:26:54 IST``.
    ``when:"time"`` for the clock only, ``when:"short"`` (no zone) where a caption names the zone."""
    if not isinstance(value, datetime):
        return ""
    return timezones.format_moment(value, form)


@register.simple_tag
def zone_label() -> str:
    """The active zone's name as ``|when`` writes it, for a caption over times shown without it."""
    return timezones.current_zone_label()


@register.inclusion_tag("runs/_time_zone.html", takes_context=True)
def time_zone_picker(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    choice = timezones.session_choice(request)
    return {"choice": choice, "label": timezones.current_zone_label(),
            "next": request.get_full_path(), "csrf_token": context.get("csrf_token")}
