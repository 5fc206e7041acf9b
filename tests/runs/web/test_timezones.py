"""Times in the user's zone, named: runs/web/timezones.py and the ``|when`` filter."""
from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from runs.templatetags.runs_tags import when
from runs.web.timezones import effective_zone, valid_zone, zone_label, zone_names

MOMENT = datetime(2026, 12, 1, 10, 56, 54, tzinfo=UTC)
# Django's filters that write a time without naming its zone.
TIME_FILTER = re.compile(r"\|\s*(date|time|timesince|timeuntil|naturaltime)\b")


class WhenTests:
    def test_it_writes_utc_by_default(self) -> None:
        assert when(MOMENT) == "2026-12-01 10:56:54 UTC"

    def test_it_writes_the_active_zone_with_its_abbreviation(self) -> None:
        with timezone.override(zoneinfo.ZoneInfo("Asia/Kolkata")):
            assert when(MOMENT) == "2026-12-01 16:26:54 IST"
            assert when(MOMENT, "time") == "16:26:54 IST"
            assert when(MOMENT, "short") == "12-01 16:26"

    def test_it_writes_the_offset_where_a_zone_has_no_abbreviation(self) -> None:
        with timezone.override(zoneinfo.ZoneInfo("Asia/Dubai")):
            assert when(MOMENT) == "2026-12-01 14:56:54 +04:00"
        with timezone.override(zoneinfo.ZoneInfo("America/St_Johns")):
            assert when(MOMENT) == "2026-12-01 07:26:54 NST"
        with timezone.override(zoneinfo.ZoneInfo("America/Sao_Paulo")):
            assert zone_label(timezone.localtime(MOMENT)) == "-03:00"

    def test_it_writes_nothing_for_no_time(self) -> None:
        assert when(None) == "" and when("") == ""  # type: ignore[arg-type]


class ZoneNamesTests:
    def test_it_knows_iana_names_and_refuses_others(self) -> None:
        assert "Asia/Kolkata" in zone_names() and "UTC" in zone_names()
        assert valid_zone(" Europe/Paris ") == "Europe/Paris"
        assert valid_zone("Mars/Olympus") is None and valid_zone("") is None

    def test_it_falls_back_to_utc_without_a_known_zone(self) -> None:
        assert effective_zone("utc", "Asia/Kolkata") == "UTC"
        assert effective_zone("browser", "Asia/Kolkata") == "Asia/Kolkata"
        assert effective_zone("browser", "") == "UTC"
        assert effective_zone("named", "nowhere") == "UTC"


class OneWayToWriteATimeTests:
    def test_no_template_formats_a_time_but_through_when(self) -> None:
        """``|date``, ``|time`` and ``|timesince`` would write a time without its zone."""
        offenders = [f"{path.relative_to(settings.BASE_DIR)}: {line.strip()}"
                     for path in (Path(settings.BASE_DIR) / "templates").rglob("*.html")
                     for line in path.read_text().splitlines()
                     if TIME_FILTER.search(line)]
        assert not offenders, offenders

