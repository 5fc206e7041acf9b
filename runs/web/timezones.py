"""The time zone every page shows its times in: UTC, the browser's, or a named IANA zone, per user.

The choice lives in ``UserPreference`` (kept across sessions) and is copied into the session at
login and when it changes, so the middleware activates it without reading a row: pages keep their
query counts. Templates format every time with ``{{ value|when }}`` (runs/templatetags), which
renders in the active zone and names it.
"""
from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from runs.models import TimeZoneMode, UserPreference

SESSION_KEY = "dagsapp.time_zone"
# Answered without a session: the JSON APIs (JWT), metrics and the health check.
SESSIONLESS_PREFIXES = ("/api/", "/auth/", "/metrics", "/health", "/static/")


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows (zoneinfo), sorted; the picker's suggestions and the
    allowed values of a named zone."""
    return tuple(sorted(n for n in zoneinfo.available_timezones() if "/" in n or n == "UTC"))


def valid_zone(name: str) -> str | None:
    name = name.strip()
    if name in zone_names():
        return name
    return None


def effective_zone(mode: str, name: str) -> str:
    """The zone a preference shows times in: UTC unless a browser or named zone is known."""
    if mode in (TimeZoneMode.BROWSER, TimeZoneMode.NAMED):
        return valid_zone(name) or "UTC"
    return "UTC"


def remember(request: HttpRequest, pref: UserPreference) -> None:
    request.session[SESSION_KEY] = {"mode": pref.time_zone_mode, "zone": effective_zone(pref.time_zone_mode, pref.time_zone),
                                    "browser": pref.time_zone}


def remember_at_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """``user_logged_in``: the user's saved choice (UTC when none) into the new session."""
    if request is None or not hasattr(request, "session"):
        return
    pref = UserPreference.objects.filter(user=user).first() or UserPreference(user=user)
    remember(request, pref)


def session_choice(request: HttpRequest) -> dict[str, str]:
    """The choice in this session: ``mode``, ``zone`` (in effect) and ``browser`` (as last detected)."""
    choice = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if isinstance(choice, dict) and isinstance(choice.get("zone"), str):
        return choice
    return {"mode": TimeZoneMode.UTC, "zone": "UTC", "browser": ""}


def timezone_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Activates the user's zone for the request (after the session and auth middleware), so every
    server-rendered time (``|when``, ``timezone.localtime``) follows it; the APIs stay in UTC."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(SESSIONLESS_PREFIXES):
            return get_response(request)
        zone = session_choice(request)["zone"]
        if zone == "UTC":
            timezone.deactivate()
        else:
            timezone.activate(zoneinfo.ZoneInfo(zone))
        try:
            return get_response(request)
        finally:
            timezone.deactivate()

    return middleware


def zone_label(moment: datetime) -> str:
    """``UTC``, an abbreviation (``IST``, ``CET``) or, where the zone has none, the offset (``+04:00``)."""
    name = moment.tzname() or ""
    if name.isalpha():
        return name
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


FORMATS = {"datetime": "%Y-%m-%d %H:%M:%S", "time": "%H:%M:%S", "short": "%m-%d %H:%M"}


def format_moment(value: datetime, form: str = "datetime") -> str:
    """``value`` in the active zone, with the zone named (``short``, for captions that name it, without)."""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    text = local.strftime(FORMATS.get(form, FORMATS["datetime"]))
    return text if form == "short" else f"{text} {zone_label(local)}"


def current_zone_label() -> str:
    return zone_label(timezone.localtime(timezone.now()))
