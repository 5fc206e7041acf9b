"""The log viewer's responses: a window of a long log, search across it, download, time zones."""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs.logs import MAX_CHUNK_CHARS
from runs.models import DagRun, TaskInstance, TaskInstanceLog

XSS = "<script>alert(1)</script>"


def _ti(run: DagRun, map_index: int, suffix: str = "") -> str:
    return f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/add/mapped/{map_index}/{suffix}"


def _store(ti: TaskInstance, text: str, try_number: int = 1) -> None:
    TaskInstanceLog.objects.bulk_create([TaskInstanceLog(task_instance=ti, try_number=try_number, text=text[i:i + MAX_CHUNK_CHARS])
                                         for i in range(0, len(text), MAX_CHUNK_CHARS)])


def _long_log(n: int) -> str:
    return "".join(f"[2026-01-02 10:00:00,000] {{t}} {'ERROR' if i % 1000 == 0 else 'INFO'} - line {i}"
                   f"{' needle' if i == 7 else ''}\n" for i in range(1, n + 1))


def _line_numbers(body: str) -> list[int]:
    return [int(n) for n in re.findall(r'<div class="ll[^"]*" id="L(\d+)"', body)]


class LogViewerPageTests:
    def test_it_opens_a_50000_line_log_at_its_last_window_in_bounded_time_and_queries(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        _store(ti, _long_log(50_000))
        url = _ti(run, 0) + "?tab=log"
        operator_client.get(url)
        with CaptureQueriesContext(connection) as queries:
            started = time.monotonic()
            body = operator_client.get(url).content.decode()
            elapsed = time.monotonic() - started
        numbers = _line_numbers(body)
        assert numbers == list(range(49_001, 50_001))
        assert "lines 49,001–50,000 of 50,000" in body
        assert 'id="log-earlier"' in body and 'id="log-later"' not in body
        assert 'class="ll lvl-error" id="L50000"' in body
        assert elapsed < 2.0, elapsed
        small = len(queries)
        TaskInstanceLog.objects.filter(task_instance=ti).delete()
        _store(ti, _long_log(10))
        with CaptureQueriesContext(connection) as queries:
            operator_client.get(url)
        assert len(queries) == small  # the log is one query whatever its length

    def test_it_searches_the_whole_log_and_moves_to_the_match(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        _store(ti, _long_log(50_000))
        body = operator_client.get(_ti(run, 0), {"tab": "log", "q": "needle", "match": 0}).content.decode()
        assert _line_numbers(body)[0] == 1 and 'class="ll lvl-info current" id="L7"' in body
        assert "line 7 <mark>needle</mark>" in body and "1 of 1 match" in body
        fragment = operator_client.get(_ti(run, 0, "log/"), {"q": "line 4999", "match": 1}, HTTP_HX_REQUEST="true").content.decode()
        assert fragment.lstrip().startswith('<div id="log-viewer"')
        assert "2 of 11 matches" in fragment and 'current" id="L49990"' in fragment
        # Next and previous as links (a new tab, no JavaScript) and as htmx requests for the viewer alone.
        assert re.search(r'id="log-next-match" href="[^"]*/mapped/0/\?tab=log&amp;try=1&amp;q=line\+4999&amp;match=2"', fragment)
        assert re.search(r'hx-get="[^"]*/mapped/0/log/\?try=1&amp;q=line\+4999&amp;match=2"', fragment)
        assert "no matches" in operator_client.get(_ti(run, 0, "log/"), {"q": "absent", "match": 0}, HTTP_HX_REQUEST="true").content.decode()

    def test_it_pages_with_earlier_later_start_and_end(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        _store(ti, _long_log(2_500))
        body = operator_client.get(_ti(run, 0, "log/"), {"start": 1}, HTTP_HX_REQUEST="true").content.decode()
        assert _line_numbers(body)[0] == 1 and 'id="log-first"' not in body and 'id="log-later"' in body
        body = operator_client.get(_ti(run, 0, "log/"), {"start": 1001}, HTTP_HX_REQUEST="true").content.decode()
        assert (_line_numbers(body)[0], _line_numbers(body)[-1]) == (1001, 2000)
        assert 'start=1"' in body and "start=2001" in body and "start=1501" in body

    def test_it_pushes_the_address_of_the_page_it_is_in_at_this_window_or_match(self, operator_client: Client, run: DagRun) -> None:
        """Back, Forward and a reload show where the reader was: the viewer's answer names the whole page (the
        instance's own, or the Grid with the instance open) at the window or match, and that page renders it."""
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        _store(ti, _long_log(2_500))
        page = f"http://testserver{_ti(run, 0)}?tab=log&start=5"
        response = operator_client.get(_ti(run, 0, "log/"), {"start": 1001}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=page)
        assert response["HX-Push-Url"] == f"{_ti(run, 0)}?tab=log&try=1&start=1001"
        assert "lines 1,001–2,000 of 2,500" in operator_client.get(response["HX-Push-Url"]).content.decode()
        grid = f"/dags/{run.dag_id}/grid/?{urlencode({'run_id': run.run_id, 'task_id': 'add', 'map_index': 0})}"
        response = operator_client.get(_ti(run, 0, "log/"), {"q": "needle", "match": 0}, HTTP_HX_REQUEST="true",
                                       HTTP_HX_CURRENT_URL=f"http://testserver{grid}")
        pushed = response["HX-Push-Url"]
        assert pushed.startswith(f"/dags/{run.dag_id}/grid/?run_id=") and pushed.endswith("&map_index=0&tab=log&try=1&q=needle&match=0")
        body = operator_client.get(pushed).content.decode()
        assert 'id="grid-body"' in body and "1 of 1 match" in body and 'current" id="L7"' in body
        # A search that finds nothing keeps the window it was in.
        response = operator_client.get(_ti(run, 0, "log/"), {"start": 1, "q": "absent", "match": 0}, HTTP_HX_REQUEST="true",
                                       HTTP_HX_CURRENT_URL=page)
        assert response["HX-Push-Url"] == f"{_ti(run, 0)}?tab=log&try=1&start=1&q=absent"
        # Only an address on this site: otherwise the instance's page.
        response = operator_client.get(_ti(run, 0, "log/"), {"start": 1}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://x//evil.example/")
        assert response["HX-Push-Url"] == f"{_ti(run, 0)}?tab=log&try=1&start=1"
        # The live tail's answers add no entry.
        assert "HX-Push-Url" not in operator_client.get(_ti(run, 0, "log/"), {"from": 2500}, HTTP_HX_REQUEST="true")

    def test_it_escapes_the_log(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        _store(ti, f"[2026-01-02 10:00:00,000] {{t}} INFO - {XSS}\n<img src=x onerror=alert(1)>\n")
        body = operator_client.get(_ti(run, 0), {"tab": "log", "q": "<script>"}).content.decode()
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "<mark>&lt;script&gt;</mark>alert(1)" in body and "&lt;img src=x onerror=alert(1)&gt;" in body

    def test_it_downloads_the_raw_log_as_an_attachment(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        TaskInstance.objects.filter(pk=ti.pk).update(try_number=2)
        _store(ti, "first try\n", 1)
        _store(ti, f"second {XSS}\n", 2)
        response = operator_client.get(_ti(run, 0, "log/"), {"try": 1, "download": 1})
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response["Content-Disposition"] == f'attachment; filename="view_add-{re.sub(r"[^A-Za-z0-9._-]+", "_", run.run_id)}-add-0-try1.log"'
        assert response.content == b"first try\n"
        assert operator_client.get(_ti(run, 0, "log/"), {"download": 1}).content.decode() == f"second {XSS}\n"

    @pytest.mark.parametrize(("zone", "shown"), [("UTC", "2026-01-02 10:00:00.250"), ("Asia/Kolkata", "2026-01-02 15:30:00.250")])
    def test_it_shows_times_in_the_active_time_zone(self, operator_client: Client, run: DagRun, settings: object, zone: str, shown: str) -> None:
        settings.TIME_ZONE = zone  # type: ignore[attr-defined]
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        _store(ti, "[2026-01-02 10:00:00,250] {t} INFO - hello\n")
        body = operator_client.get(_ti(run, 0), {"tab": "log"}).content.decode()
        assert f'<time class="ts" datetime="2026-01-02T10:00:00.250000+00:00">{shown}</time>' in body
        assert f"times in {zone}" in body

    def test_it_resets_a_tail_that_grew_past_two_windows_to_the_end(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=2)  # running
        _store(ti, _long_log(2_500))
        response = operator_client.get(_ti(run, 2, "log/"), {"start": 1, "from": 1000}, HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="log-poller")
        assert response["HX-Retarget"] == "#log-viewer"
        assert _line_numbers(response.content.decode())[0] == 1501

    def test_it_follows_the_users_chosen_time_zone(self, operator_client: Client, run: DagRun) -> None:
        from django.urls import reverse

        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        _store(ti, "[2026-01-02 10:00:00,250] {t} INFO - hello\n")
        operator_client.post(reverse("runs:set_time_zone"), {"mode": "named", "zone": "Asia/Kolkata", "next": "/"})
        body = operator_client.get(_ti(run, 0), {"tab": "log"}).content.decode()
        assert ">2026-01-02 15:30:00.250</time>" in body and "times in Asia/Kolkata" in body
