"""The runs and task-instances lists in a real browser: filters and a page picked, another page opened,
then Back, Forward and a reload bring back the same rows with the form showing the same filters."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from runs.models import DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from tests.browser.test_dashboard_story import log_in, settled, user
from tests.runs.web.views.test_code_and_docs import DOCUMENTED

pytestmark = pytest.mark.django_db(transaction=True)
FAILED_ALPHA = 60


@pytest.fixture
def runs_of_two_dags(transactional_db: None, tmp_path: Path) -> None:
    """60 failed runs of alpha (two pages of 50), 5 successful runs of beta; every instance started."""
    for dag_id in ("alpha", "beta"):
        (tmp_path / f"{dag_id}.py").write_text(textwrap.dedent(DOCUMENTED).replace('"documented"', f'"{dag_id}"'))
    process_dags_folder(tmp_path)
    now = timezone.now()
    for i, (dag_id, state) in enumerate([("alpha", "failed")] * FAILED_ALPHA + [("beta", "success")] * 5):
        start = now - timedelta(minutes=i + 1)
        run = create_dag_run(dag_id=dag_id, logical_date=start)
        DagRun.objects.filter(pk=run.pk).update(state=state, start_date=start, end_date=start + timedelta(seconds=30))
        TaskInstance.objects.filter(dag_run=run).update(state=state, try_number=1, start_date=start, end_date=start)


def _shows(page: Page, info: str, *, state: str, dag_id: str) -> None:
    """The rows of that page, and the form naming the filters they were picked by."""
    expect(page.locator("#page-info").first).to_have_text(info)
    expect(page.locator("#f-state")).to_have_value(state)
    expect(page.locator("#f-dag")).to_have_value(dag_id)


def _walk(page: Page, way: Literal["back", "forward"], views: list[tuple[str, str, str]]) -> None:
    """Back (or Forward) once per view, each showing its rows and filters: (page info, state, DAG)."""
    for info, state, dag_id in views:
        page.go_back() if way == "back" else page.go_forward()
        _shows(page, info, state=state, dag_id=dag_id)


def _open(page: Page, base: str, path: str) -> None:
    user("vera", "Viewer")
    log_in(page, base, "vera")
    page.goto(f"{base}{path}")


def _filter(page: Page, *, state: str, dag_id: str) -> None:
    """The form filled and sent, as a person would (the form, not a link)."""
    page.locator("#f-state").select_option(state)
    page.locator("#f-dag").select_option(dag_id)
    page.locator("#browse-filters button[type=submit]").click()


class BrowseHistoryStoryTests:
    def test_back_forward_and_reload_keep_the_runs_lists_filters_and_page(self, live_server: Any, page: Page,
                                                                            runs_of_two_dags: None) -> None:
        _open(page, live_server.url, "/runs/")
        _shows(page, "1–50 of 65", state="", dag_id="")
        _filter(page, state="failed", dag_id="alpha")
        _shows(page, f"1–50 of {FAILED_ALPHA}", state="failed", dag_id="alpha")
        expect(page).to_have_url(re.compile(r"/runs/\?state=failed&dag_id=alpha$"))
        settled(page)
        page.locator("#page-next").first.click()
        _shows(page, f"51–{FAILED_ALPHA} of {FAILED_ALPHA}", state="failed", dag_id="alpha")
        expect(page.locator("#run-table tbody tr")).to_have_count(FAILED_ALPHA - 50)
        settled(page)

        # Into a run's Grid, and Back: the same page of the same filtered rows.
        page.locator("#run-table tbody tr").first.locator("a").first.click()
        expect(page).to_have_url(re.compile(r"/dags/alpha/grid/"))
        page.go_back()
        _shows(page, f"51–{FAILED_ALPHA} of {FAILED_ALPHA}", state="failed", dag_id="alpha")
        expect(page.locator("#run-table .state-text").first).to_have_text(re.compile("failed", re.I))
        _walk(page, "back", [(f"1–50 of {FAILED_ALPHA}", "failed", "alpha"), ("1–50 of 65", "", "")])
        _walk(page, "forward", [(f"1–50 of {FAILED_ALPHA}", "failed", "alpha"), (f"51–{FAILED_ALPHA} of {FAILED_ALPHA}", "failed", "alpha")])
        # A reload renders the same from the address alone.
        page.reload()
        _shows(page, f"51–{FAILED_ALPHA} of {FAILED_ALPHA}", state="failed", dag_id="alpha")

    def test_back_forward_and_reload_keep_the_task_instances_lists_filters_and_page(self, live_server: Any, page: Page,
                                                                                     runs_of_two_dags: None) -> None:
        _open(page, live_server.url, "/task-instances/")
        # Two instances a run (extract, add[0]): 130, of which beta's 5 runs have 10 that succeeded.
        _shows(page, "1–50 of 130", state="", dag_id="")
        page.get_by_role("link", name="Running").click()
        _shows(page, "none", state="running", dag_id="")
        settled(page)
        _filter(page, state="success", dag_id="beta")
        _shows(page, "1–10 of 10", state="success", dag_id="beta")
        expect(page.locator("#ti-table tbody tr")).to_have_count(10)
        settled(page)
        _filter(page, state="failed", dag_id="")
        _shows(page, "1–50 of 120", state="failed", dag_id="")
        settled(page)
        page.locator("#page-next").first.click()
        _shows(page, "51–100 of 120", state="failed", dag_id="")
        settled(page)

        page.locator("#ti-table tbody tr").first.locator("a.ti-link").click()
        expect(page).to_have_url(re.compile(r"/dags/alpha/grid/\?run_id=.*task_id="))
        _walk(page, "back", [("51–100 of 120", "failed", ""), ("1–50 of 120", "failed", ""), ("1–10 of 10", "success", "beta"),
                             ("none", "running", "")])
        _walk(page, "forward", [("1–10 of 10", "success", "beta")])
        page.reload()
        _shows(page, "1–10 of 10", state="success", dag_id="beta")
        expect(page.locator("#ti-table tbody tr")).to_have_count(10)
