"""A user's own preferences: the time zone pages show times in (runs/web/timezones.py)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST, require_safe

from runs.models import TimeZoneMode, UserPreference
from runs.web import timezones


@require_POST
@login_required
def set_time_zone(request: HttpRequest) -> HttpResponse:
    """Any role may choose how it reads times: this changes no run. A named zone must be an IANA
    name; the browser's is what its Intl reports (a hidden field filled by static/js/app.js)."""
    mode = request.POST.get("mode", "")
    if mode not in TimeZoneMode.values:
        mode = TimeZoneMode.NAMED
    name = request.POST.get("browser_zone" if mode == TimeZoneMode.BROWSER else "zone", "")
    zone = "" if mode == TimeZoneMode.UTC else timezones.valid_zone(name)
    if zone is None:
        messages.error(request, f"Unknown time zone {name.strip()!r}: pick an IANA name such as Europe/Paris.")
    else:
        pref, _ = UserPreference.objects.get_or_create(user=request.user)
        pref.time_zone_mode, pref.time_zone = mode, zone or pref.time_zone
        pref.save(update_fields=["time_zone_mode", "time_zone"])
        timezones.remember(request, pref)
    # Back to the page the form was on: a path on this site only (never a view name, another host or scheme).
    target = request.POST.get("next", "")
    if not target.startswith("/") or not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                                          require_https=request.is_secure()):
        target = reverse("runs:dag_list")
    return HttpResponseRedirect(target)


@require_safe
@login_required
@cache_control(private=True, max_age=86400)
def time_zone_names(request: HttpRequest) -> HttpResponse:
    """The named zone field's suggestions (``<option>``s for its datalist), fetched on first focus."""
    return render(request, "runs/_time_zone_names.html", {"zone_names": timezones.zone_names()})
