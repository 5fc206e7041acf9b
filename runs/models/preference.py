from __future__ import annotations

from django.conf import settings
from django.db import models


class TimeZoneMode(models.TextChoices):
    UTC = "utc", "UTC"
    BROWSER = "browser", "The browser's time zone"
    NAMED = "named", "A named time zone"


class UserPreference(models.Model):
    """What one user chose for the dashboard, kept across sessions and browsers. The time zone is
    copied into the session at login (runs/web/timezones.py), so a page reads no extra row."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    time_zone_mode = models.CharField(max_length=10, choices=TimeZoneMode.choices, default=TimeZoneMode.UTC)
    # An IANA name: the named zone, or the browser's as it last reported it (Intl, static/js/app.js).
    time_zone = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.time_zone_mode} {self.time_zone}"
