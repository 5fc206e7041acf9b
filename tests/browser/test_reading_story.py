"""Reading in a real browser: a DAG's docs above its Grid and a task's docs in its panel (sanitised),
the DAG's code as it was for an old run; then browsing across DAGs: the DAG list searched and
filtered by keyboard, everything that failed today in the runs and task-instances lists, each row
opening the Grid at that run or instance."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from runs.models import DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from tests.browser.test_dashboard_story import log_in, settled, user
from tests.runs.web.views.test_code_and_docs import DOCUMENTED

pytestmark = pytest.mark.django_db(transaction=True)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _watch_alerts(page: Page) -> list[str]:
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    return alerts


class ReadingStoryTests:
    def test_a_reader_sees_dag_and_task_docs_and_the_code_of_an_old_run(self, live_server: Any, page: Page, tmp_path: Path) -> None:
        path = tmp_path / "documented.py"
        path.write_text(textwrap.dedent(DOCUMENTED))
        process_dags_folder(tmp_path)
        old = create_dag_run(dag_id="documented", logical_date=timezone.now() - timedelta(hours=1))
        path.write_text(path.read_text().replace("return 1", "return 2  # fixed the source table"))
        process_dags_folder(tmp_path)
        user("vera", "Viewer")
        alerts = _watch_alerts(page)
        log_in(page, live_server.url, "vera")
        page.goto(f"{live_server.url}/dags/documented/grid/")
        docs = page.locator("#dag-docs")
        expect(docs.locator("h1")).to_have_text("Nightly load")
        expect(docs.locator("strong")).to_have_text("everything")
        assert docs.locator("script").count() == 0 and docs.locator("[onerror]").count() == 0

        # The docs collapse and open from the keyboard.
        docs.locator("summary").focus()
        page.keyboard.press("Enter")
        expect(docs).not_to_have_attribute("open", "")
        page.keyboard.press("Enter")
        expect(docs).to_have_attribute("open", "")

        # A task's docs (its docstring) in its panel, opened by keyboard.
        page.goto(f"{live_server.url}/dags/documented/grid/?{urlencode({'run_id': old.run_id})}")
        page.locator("#label-extract").focus()
        page.keyboard.press("Enter")
        task_docs = page.locator("#task-docs-extract")
        expect(task_docs).to_be_visible()
        task_docs.locator("summary").click()
        expect(task_docs.locator("em")).to_have_text("source")
        assert task_docs.locator("script").count() == 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dag_page.png"), full_page=True)

        # The code of the version the old run was created with, then the latest.
        page.locator("#code-link").click()
        expect(page.locator("#code-run")).to_contain_text(old.run_id)
        expect(page.locator("#dag-code .highlight")).to_contain_text("return 1")
        expect(page.locator("#dag-code")).not_to_contain_text("fixed the source table")
        expect(page.locator("#dag-code .highlight .k").first).to_have_css("font-weight", "700")  # highlighted: keywords bold
        page.locator("#code-version").select_option("2")
        expect(page.locator("#dag-code")).to_contain_text("fixed the source table")
        expect(page).to_have_url(re.compile(r"/dags/documented/code/\?version=2$"))
        assert alerts == []

    def test_an_operator_finds_what_failed_today_across_dags(self, live_server: Any, page: Page, tmp_path: Path) -> None:
        for dag_id, tags in (("sales_daily", ["sales"]), ("sales_hourly", ["sales"]), ("ops_cleanup", ["ops"])):
            source = textwrap.dedent(DOCUMENTED).replace('"documented"', f'"{dag_id}"').replace('tags=["docs"]', f"tags={tags!r}")
            (tmp_path / f"{dag_id}.py").write_text(source)
        process_dags_folder(tmp_path)
        failed = self._run("sales_hourly", "failed", timedelta(minutes=20))
        self._run("ops_cleanup", "success", timedelta(minutes=10))
        self._run("ops_cleanup", "failed", timedelta(days=2))
        user("olga", "Operator")
        log_in(page, live_server.url, "olga")

        # The DAG list: search by keyboard (htmx, the URL follows), then a tag, then the last run's state.
        page.goto(f"{live_server.url}/")
        page.locator("#dag-q").focus()
        page.keyboard.type("SALES")
        expect(page.locator("#dag-table tbody tr")).to_have_count(2)
        expect(page).to_have_url(re.compile(r"/\?q=SALES$"))
        page.locator("#dag-q").fill("")
        page.locator("#dag-tag").select_option("ops")
        expect(page.locator("#dag-table tbody tr")).to_have_count(1)
        expect(page.locator("#dag-ops_cleanup")).to_be_visible()
        page.goto(f"{live_server.url}/?state=failed")
        expect(page.locator("#dag-table tbody tr")).to_have_count(1)
        expect(page.locator("#dag-sales_hourly")).to_be_visible()
        page.go_back()
        expect(page.locator("#dag-ops_cleanup")).to_be_visible()

        # Runs: the quick filter "Failed today", then the row opens the Grid at that run.
        page.locator("#nav-runs").click()
        page.get_by_role("link", name="Failed today").click()
        expect(page.locator("#run-table tbody tr")).to_have_count(1)
        expect(page.locator("#f-state")).to_have_value("failed")
        page.locator(f"#run-row-{failed.pk} a", has_text=failed.run_id).click()
        expect(page.locator(f"#run-{failed.pk}")).to_have_class(re.compile(r"\bselected\b"))

        # Task instances that failed today: the row opens the Grid with that instance's panel.
        page.locator("#nav-task-instances").click()
        page.get_by_role("link", name="Failed today").click()
        settled(page)
        expect(page.locator("#ti-table tbody tr")).to_have_count(2)
        page.locator("#ti-table tbody tr").first.locator("a.ti-link").click()
        expect(page.locator("#instance-panel h2")).to_contain_text("add")
        expect(page.locator("#instance-panel h2")).to_contain_text("[1]")

    @staticmethod
    def _run(dag_id: str, state: str, ago: timedelta) -> DagRun:
        run = create_dag_run(dag_id=dag_id, logical_date=timezone.now() - ago)
        start = timezone.now() - ago
        DagRun.objects.filter(pk=run.pk).update(state=state, start_date=start, end_date=start + timedelta(seconds=30))
        TaskInstance.objects.filter(dag_run=run, task_id="add").delete()
        TaskInstance.objects.filter(dag_run=run).update(state="success", try_number=1, start_date=start, end_date=start)
        TaskInstance.objects.bulk_create([TaskInstance(dag_run=run, task_id="add", map_index=i, state=state, try_number=1,
                                                       start_date=start + timedelta(seconds=i), end_date=start) for i in range(2)])
        return run
