"""The time zone preference (runs/web/views/preferences.py) and the pages that follow it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs.models import DagRun, TaskInstance, UserPreference

SET = "/preferences/time-zone/"
START = datetime(2026, 12, 1, 10, 56, 54, tzinfo=UTC)


def _timed(run: DagRun) -> DagRun:
    DagRun.objects.filter(pk=run.pk).update(logical_date=START, start_date=START)
    TaskInstance.objects.filter(dag_run=run, task_id="add").update(queued_at=START - timedelta(seconds=5), start_date=START,
                                                                    end_date=START + timedelta(seconds=3))
    run.refresh_from_db()
    return run


class SetTimeZoneTests:
    def test_it_remembers_a_named_zone_for_the_user(self, viewer_client: Client) -> None:
        response = viewer_client.post(SET, {"mode": "named", "zone": "Asia/Kolkata", "next": "/dags/view_add/grid/"})
        assert response.status_code == 302 and response["Location"] == "/dags/view_add/grid/"
        pref = UserPreference.objects.get(user__username="viewer")
        assert (pref.time_zone_mode, pref.time_zone) == ("named", "Asia/Kolkata")
        # Remembered per user, not per session: a new login starts in it.
        other = Client()
        other.force_login(User.objects.get(username="viewer"))
        assert 'id="tz-current">IST<' in other.get("/").content.decode()

    def test_it_takes_the_browsers_zone_as_reported(self, viewer_client: Client) -> None:
        viewer_client.post(SET, {"mode": "browser", "browser_zone": "Europe/Paris", "zone": "ignored"})
        pref = UserPreference.objects.get(user__username="viewer")
        assert (pref.time_zone_mode, pref.time_zone) == ("browser", "Europe/Paris")
        page = viewer_client.get("/").content.decode()
        assert 'data-tz-mode="browser"' in page and 'data-tz-browser="Europe/Paris"' in page

    def test_it_refuses_an_unknown_zone_and_keeps_the_choice(self, viewer_client: Client) -> None:
        viewer_client.post(SET, {"mode": "named", "zone": "Asia/Kolkata"})
        response = viewer_client.post(SET, {"mode": "named", "zone": "<b>Mars/Olympus</b>"}, follow=True)
        body = response.content.decode()
        assert "Unknown time zone" in body and "<b>Mars" not in body, "the message is escaped"
        assert UserPreference.objects.get(user__username="viewer").time_zone == "Asia/Kolkata"

    def test_it_goes_back_to_utc(self, viewer_client: Client) -> None:
        viewer_client.post(SET, {"mode": "named", "zone": "Asia/Kolkata"})
        viewer_client.post(SET, {"mode": "utc"})
        assert 'id="tz-current">UTC<' in viewer_client.get("/").content.decode()

    def test_it_never_redirects_offsite_and_needs_a_post(self, viewer_client: Client) -> None:
        assert viewer_client.post(SET, {"mode": "utc", "next": "https://evil.example/"})["Location"] == "/"
        assert viewer_client.post(SET, {"mode": "utc", "next": "runs:grid"})["Location"] == "/", "never a view name"
        assert viewer_client.get(SET).status_code == 405
        assert Client().post(SET, {"mode": "utc"}).status_code == 302  # to the login page
        assert not UserPreference.objects.exclude(user__username="viewer").exists()


class PagesInTheZoneTests:
    def test_it_shows_the_grid_run_panel_instance_and_gantt_in_the_users_zone(
        self, viewer_client: Client, run: DagRun,
    ) -> None:
        _timed(run)
        utc_grid = viewer_client.get(f"/dags/view_add/grid/?run_id={quote(run.run_id)}").content.decode()
        assert "2026-12-01 10:56:54 UTC" in utc_grid
        viewer_client.post(SET, {"mode": "named", "zone": "Asia/Kolkata"})
        grid = viewer_client.get(f"/dags/view_add/grid/?run_id={quote(run.run_id)}").content.decode()
        assert "2026-12-01 16:26:54 IST" in grid and "10:56:54" not in grid
        assert "12-01 16:26" in grid and "logical dates, IST" in grid, "the dates under the run bars, and their zone"
        instance = viewer_client.get(f"/dags/view_add/runs/{quote(run.run_id)}/tasks/add/mapped/0/").content.decode()
        assert "<dt>Start</dt><dd>2026-12-01 16:26:54 IST</dd>" in instance
        panel = viewer_client.get(f"/dags/view_add/runs/{quote(run.run_id)}/tasks/add/").content.decode()
        assert "16:26:54 IST" in panel
        gantt = viewer_client.get(f"/dags/view_add/runs/{quote(run.run_id)}/gantt/").content.decode()
        assert "Axis from <strong>2026-12-01 16:26:49 IST</strong>" in gantt
        assert "queued 16:26:49 IST → started 16:26:54 IST" in gantt and "16:26:54 IST → 16:26:57 IST" in gantt

    def test_it_reads_the_zone_without_a_query_of_its_own(
        self, viewer_client: Client, run: DagRun,
    ) -> None:
        url = f"/dags/view_add/grid/?run_id={quote(run.run_id)}"
        viewer_client.get(url)
        with CaptureQueriesContext(connection) as in_utc:
            viewer_client.get(url)
        viewer_client.post(SET, {"mode": "named", "zone": "Asia/Kolkata"})
        viewer_client.get(url)
        with CaptureQueriesContext(connection) as in_kolkata:
            assert "IST" in viewer_client.get(url).content.decode()
        assert len(in_kolkata) == len(in_utc)

    def test_it_leaves_the_json_api_in_utc(self, viewer_client: Client, run: DagRun) -> None:
        _timed(run)
        viewer_client.post(SET, {"mode": "named", "zone": "Asia/Kolkata"})
        body = viewer_client.get(f"/api/dags/view_add/runs/{quote(run.run_id)}/tasks/add/mapped/0").json()
        assert body["start_date"].startswith("2026-12-01T10:56:54")


class ZoneNamesTests:
    def test_it_suggests_iana_names_on_request_not_with_every_page(self, viewer_client: Client) -> None:
        page = viewer_client.get("/").content.decode()
        assert "Asia/Kolkata" not in page and 'hx-get="/preferences/time-zones/"' in page
        response = viewer_client.get("/preferences/time-zones/")
        assert '<option value="Asia/Kolkata">' in response.content.decode()
        assert "max-age=86400" in response["Cache-Control"]
