"""The log viewer in a real browser: a task that logs for 5 s tailed live through the real worker
until it ends, then a 50,000-line log opened, searched across and paged without loading it whole."""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from runs.logs import MAX_CHUNK_CHARS
from runs.models import TaskInstance, TaskInstanceLog
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from tests.browser.test_dashboard_story import log_in, settled, user
from tests.conftest import LiveStack

pytestmark = pytest.mark.django_db(transaction=True)

CHATTY = """\
from __future__ import annotations
import logging
import time
from datetime import datetime
from dagsapp.sdk import dag, task


@dag(dag_id="chatty", start_date=datetime(2024, 1, 1), schedule=None)
def chatty():
    @task
    def talk():
        log = logging.getLogger("chatty")
        for i in range(10):
            if i == 4:
                log.warning("tick %d is slow", i)
            else:
                log.info("tick %d <script>alert(1)</script>", i)
            time.sleep(0.5)
        log.error("done talking")

    talk()


chatty()
"""
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _ti_url(ti: TaskInstance) -> str:
    run = ti.dag_run
    return reverse("runs:task_instance", args=[run.dag_id, run.run_id, ti.task_id, ti.map_index])


def _wait_running(run_pk: int, timeout: float = 60) -> TaskInstance:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ti = TaskInstance.objects.select_related("dag_run").filter(dag_run_id=run_pk, task_id="talk").first()
        if ti is not None and ti.state == "running" and TaskInstanceLog.objects.filter(task_instance=ti).exists():
            return ti
        time.sleep(0.2)
    pytest.fail("the task did not start logging")


class LogViewerStoryTests:
    def test_a_reader_tails_a_running_task_until_it_ends(self, live_server: Any, page: Page, tmp_path: Path,
                                                         live_stack: Callable[..., LiveStack]) -> None:
        folder = tmp_path / "dags"
        folder.mkdir()
        (folder / "chatty.py").write_text(textwrap.dedent(CHATTY))
        process_dags_folder(folder)
        stack = live_stack(dags_folder=folder)
        run = create_dag_run(dag_id="chatty", logical_date=timezone.now())
        user("rita", "Viewer")
        log_in(page, live_server.url, "rita")
        ti = _wait_running(run.pk)
        page.goto(f"{live_server.url}{_ti_url(ti)}?tab=log")
        expect(page.locator("#log-poller .live")).to_be_visible()
        lines = page.locator("#log-lines .ll")
        page.locator("#log-viewer").evaluate("el => el.dataset.marker = 'kept'")
        first_count = lines.count()
        assert "done talking" not in page.locator("#log-lines").inner_text()
        # New lines arrive while it runs, without reloading the page (the viewer is the same element).
        expect(page.locator("#log-lines .ll.lvl-warning")).to_contain_text("tick 4 is slow")
        # It ends: the last line shows, coloured as an error, and the tail stops.
        expect(page.locator("#log-lines .ll.lvl-error").last).to_contain_text("done talking", timeout=30_000)
        expect(page.locator("#log-poller .live")).to_have_count(0, timeout=15_000)
        assert page.locator("#log-viewer").get_attribute("data-marker") == "kept", stack.report(tail=2000)
        assert lines.count() > first_count
        # Printed as text, never run; each line numbered once, in order.
        expect(page.locator("#log-lines")).to_contain_text("<script>alert(1)</script>")
        numbers = [int(n) for n in page.locator("#log-lines .ln").all_inner_texts()]
        assert numbers == list(range(1, len(numbers) + 1))
        # The stamp is shown in the server's zone (UTC here), with milliseconds.
        expect(page.locator("#log-lines .ts").first).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$"))
        expect(page.locator("#log-zone")).to_have_text("times in UTC")

    def test_a_reader_opens_searches_and_pages_a_50000_line_log(self, live_server: Any, page: Page, run_with_long_log: TaskInstance) -> None:
        ti = run_with_long_log
        user("rita", "Viewer")
        log_in(page, live_server.url, "rita")
        started = time.monotonic()
        page.goto(f"{live_server.url}{_ti_url(ti)}?tab=log")
        expect(page.locator("#log-range")).to_have_text("lines 49,001–50,000 of 50,000")
        opened = time.monotonic() - started
        print(f"50,000-line log: page shown in {opened:.2f} s")
        assert opened < 5.0, opened
        # Only one window is in the page, and it is scrolled to the newest line.
        assert page.locator("#log-lines .ll").count() == 1000
        assert page.evaluate("document.querySelectorAll('*').length") < 8000
        assert page.locator("#log-lines").evaluate("el => el.scrollTop + el.clientHeight >= el.scrollHeight - 4")
        expect(page.locator("#L50000 .msg")).to_have_text("{big} ERROR - line 50000")

        # Search across the whole log, by keyboard: the first match is far before this window.
        page.locator("#log-q").fill("needle")
        page.locator("#log-q").press("Enter")
        expect(page.locator("#log-match-count")).to_have_text("1 of 3 matches")
        expect(page.locator("#L7")).to_have_class(re.compile(r"\bcurrent\b"))
        expect(page.locator("#L7 mark")).to_have_text("needle")
        assert page.locator("#log-lines .ll").count() <= 1000
        page.locator("#log-next-match").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#log-match-count")).to_have_text("2 of 3 matches")
        expect(page.locator("#L30000")).to_have_class(re.compile(r"\bcurrent\b"))
        expect(page.locator("#L30000")).to_be_in_viewport()
        page.locator("#log-prev-match").click()
        expect(page.locator("#log-match-count")).to_have_text("1 of 3 matches")
        settled(page)
        # Shift+Enter in the search box (same words): the previous match, wrapping around.
        page.locator("#log-q").press("Shift+Enter")
        expect(page.locator("#log-match-count")).to_have_text("3 of 3 matches")
        expect(page.locator("#L49999")).to_have_class(re.compile(r"\bcurrent\b"))

        # Paging: to the start, later, and back to the end.
        page.locator("#log-clear-search").click()
        settled(page)
        page.locator("#log-first").click()
        expect(page.locator("#log-range")).to_have_text("lines 1–1,000 of 50,000")
        page.locator("#log-later").click()
        expect(page.locator("#log-range")).to_have_text("lines 1,001–2,000 of 50,000")
        page.locator("#log-last").click()
        expect(page.locator("#log-range")).to_have_text("lines 49,001–50,000 of 50,000")

        # Wrap toggle, remembered.
        page.locator("#log-wrap").click()
        expect(page.locator("#log-lines")).to_have_class(re.compile(r"\bwrap\b"))
        expect(page.locator("#log-wrap")).to_have_attribute("aria-pressed", "true")
        page.reload()
        expect(page.locator("#log-lines")).to_have_class(re.compile(r"\bwrap\b"))
        page.locator("#log-wrap").click()
        expect(page.locator("#log-lines")).not_to_have_class(re.compile(r"\bwrap\b"))

        # Download: the raw log as a file.
        with page.expect_download() as download:
            page.locator("#log-download").click()
        path = download.value.path()
        assert download.value.suggested_filename.endswith("-add-0-try2.log")
        assert Path(path).read_text().count("\n") == 50_000

        # The first try, picked in the try selector, has its own short log.
        page.locator("#try-select").select_option("1")
        expect(page.locator("#log-range")).to_have_text("lines 1–2 of 2")
        expect(page.locator("#log-lines .ll.lvl-error")).to_have_text(re.compile("first try failed"))
        settled(page)  # htmx binds the swapped panel's form when it settles (20 ms): a pick before that is lost
        page.locator("#try-select").select_option("2")
        expect(page.locator("#log-range")).to_have_text("lines 49,001–50,000 of 50,000")

        page.locator("#log-q").fill("needle")
        page.locator("#log-q").press("Enter")
        expect(page.locator("#log-match-count")).to_have_text("1 of 3 matches")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "log_viewer.png"))

    def test_a_try_picked_while_the_panel_refreshes_stays_picked(self, live_server: Any, page: Page, run_with_long_log: TaskInstance) -> None:
        """The panel refreshes itself every 2 s while its run is live; a refresh that was on its way
        when the reader picked another try must not bring the old try back (it did: the refresh
        of the 50,000-line try answered after the pick, and every refresh after it kept that try)."""
        ti = run_with_long_log
        user("rita", "Viewer")
        log_in(page, live_server.url, "rita")
        page.goto(f"{live_server.url}{_ti_url(ti)}?tab=log")
        expect(page.locator("#log-range")).to_have_text("lines 49,001–50,000 of 50,000")
        with page.expect_request(lambda r: r.headers.get("hx-trigger") == "instance-panel", timeout=10_000):
            pass
        page.locator("#try-select").select_option("1")
        expect(page.locator("#log-range")).to_have_text("lines 1–2 of 2")
        page.wait_for_timeout(4500)  # two more refreshes
        expect(page.locator("#log-range")).to_have_text("lines 1–2 of 2")
        expect(page.locator("#try-select")).to_have_value("1")

    def test_back_and_forward_walk_the_windows_and_matches_a_reader_visited(
            self, live_server: Any, page: Page, run_with_long_log: TaskInstance) -> None:
        """Each window and each match the reader moved to is an entry in the history, under an address the
        whole page renders the same way (a reload, a shared link); leaving the page and coming Back returns
        to where the reader was, not to the log's end."""
        ti = run_with_long_log
        user("rita", "Viewer")
        log_in(page, live_server.url, "rita")
        page.goto(f"{live_server.url}{_ti_url(ti)}?tab=log")
        rng, count, query = page.locator("#log-range"), page.locator("#log-match-count"), page.locator("#log-q")
        expect(rng).to_have_text("lines 49,001–50,000 of 50,000")
        page.locator("#log-first").click()
        expect(rng).to_have_text("lines 1–1,000 of 50,000")
        settled(page)
        page.locator("#log-later").click()
        expect(rng).to_have_text("lines 1,001–2,000 of 50,000")
        settled(page)
        query.fill("needle")
        query.press("Enter")
        expect(count).to_have_text("1 of 3 matches")
        settled(page)
        page.locator("#log-next-match").click()
        expect(count).to_have_text("2 of 3 matches")
        expect(page.locator("#L30000")).to_have_class(re.compile(r"\bcurrent\b"))
        settled(page)
        # The address is the whole page at this match: a reload shows it, highlighted, the words in the box.
        page.reload()
        expect(count).to_have_text("2 of 3 matches")
        expect(page.locator("#L30000")).to_have_class(re.compile(r"\bcurrent\b"))
        expect(query).to_have_value("needle")

        # Away to the run's Grid, and Back: the same match.
        page.locator("#instance-panel .panel-head a", has_text=ti.dag_run.run_id).click()
        expect(page).to_have_url(re.compile(r"/grid/"))
        page.go_back()
        expect(count).to_have_text("2 of 3 matches")
        expect(page.locator("#L30000")).to_have_class(re.compile(r"\bcurrent\b"))
        expect(page.locator("#L30000")).to_be_in_viewport()
        expect(query).to_have_value("needle")
        # Back again: the match before it, then the window before the search, then the first window.
        page.go_back()
        expect(count).to_have_text("1 of 3 matches")
        expect(page.locator("#L7")).to_have_class(re.compile(r"\bcurrent\b"))
        page.go_back()
        expect(rng).to_have_text("lines 1,001–2,000 of 50,000")
        expect(count).to_have_count(0)
        expect(query).to_have_value("")
        page.go_back()
        expect(rng).to_have_text("lines 1–1,000 of 50,000")
        page.go_back()
        expect(rng).to_have_text("lines 49,001–50,000 of 50,000")
        # Forward walks them again.
        page.go_forward()
        expect(rng).to_have_text("lines 1–1,000 of 50,000")
        page.go_forward()
        expect(rng).to_have_text("lines 1,001–2,000 of 50,000")
        page.go_forward()
        expect(count).to_have_text("1 of 3 matches")
        expect(page.locator("#L7")).to_have_class(re.compile(r"\bcurrent\b"))
        expect(query).to_have_value("needle")
        page.go_forward()
        expect(count).to_have_text("2 of 3 matches")
        page.go_forward()
        expect(page).to_have_url(re.compile(r"/grid/"))

    def test_a_log_paged_in_the_grids_panel_keeps_the_grid_in_the_address(
            self, live_server: Any, page: Page, run_with_long_log: TaskInstance) -> None:
        """Opened from the Grid, the window goes into the Grid's own address: Back stays on the Grid, a reload
        shows the Grid with the instance's log at that window."""
        ti = run_with_long_log
        user("rita", "Viewer")
        log_in(page, live_server.url, "rita")
        page.goto(f"{live_server.url}{reverse('runs:grid', args=[ti.dag_run.dag_id])}?"
                  f"{urlencode({'run_id': ti.dag_run.run_id, 'task_id': 'add', 'map_index': 0})}")
        page.locator("#tab-log").click()
        rng = page.locator("#details #log-range")
        expect(rng).to_have_text("lines 49,001–50,000 of 50,000")
        settled(page)
        page.locator("#log-first").click()
        expect(rng).to_have_text("lines 1–1,000 of 50,000")
        expect(page).to_have_url(re.compile(r"/grid/\?run_id=.*&map_index=0&tab=log&try=2&start=1$"))
        settled(page)
        page.locator("#log-later").click()
        expect(rng).to_have_text("lines 1,001–2,000 of 50,000")
        page.go_back()
        expect(rng).to_have_text("lines 1–1,000 of 50,000")
        expect(page.locator("#grid-body")).to_be_visible()
        page.reload()
        expect(rng).to_have_text("lines 1–1,000 of 50,000")
        expect(page.locator("#grid-body")).to_be_visible()


@pytest.fixture
def run_with_long_log(transactional_db: None, tmp_path: Path) -> TaskInstance:
    from tests.runs.web.views.conftest import ADD_DAG

    (tmp_path / "view_add.py").write_text(textwrap.dedent(ADD_DAG))
    process_dags_folder(tmp_path)
    run = create_dag_run(dag_id="view_add", logical_date=timezone.now())
    TaskInstance.objects.filter(dag_run=run, task_id="add").delete()
    ti = TaskInstance.objects.create(dag_run=run, task_id="add", map_index=0, state="failed", try_number=2, max_tries=1,
                                     start_date=timezone.now(), end_date=timezone.now())
    TaskInstanceLog.objects.create(task_instance=ti, try_number=1, text="[2026-01-02 09:00:00,000] {big} INFO - starting\n"
                                   "[2026-01-02 09:00:01,000] {big} ERROR - first try failed\n")
    levels = {7: "WARNING", 30_000: "INFO", 49_999: "INFO"}
    text = "".join(f"[2026-01-02 10:00:{i % 60:02d},000] {{big}} {'ERROR' if i % 10_000 == 0 else levels.get(i, 'INFO')} - line {i}"
                   f"{' needle' if i in levels else ''}\n" for i in range(1, 50_001))
    TaskInstanceLog.objects.bulk_create([TaskInstanceLog(task_instance=ti, try_number=2, text=text[i:i + MAX_CHUNK_CHARS])
                                         for i in range(0, len(text), MAX_CHUNK_CHARS)])
    return TaskInstance.objects.select_related("dag_run").get(pk=ti.pk)
