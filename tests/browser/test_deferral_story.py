"""Deferral in the browser (issue 11): a mapped start-from-trigger task shows 'deferred' in the Grid,
the mapped panel and the table, an instance's Details name its trigger, then everything succeeds."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from runs.cli import wait_for_dag_run
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from tests.browser.conftest import screenshot
from tests.browser.test_dashboard_story import log_in, settled, user
from tests.conftest import LiveStack

pytestmark = pytest.mark.django_db(transaction=True)


class DeferralStoryTests:
    def test_a_viewer_sees_mapped_waits_deferred_then_succeed(self, live_server: Any, page: Page,
                                                              live_stack: Callable[..., LiveStack]) -> None:
        process_dags_folder()
        stack = live_stack(triggerer=True)
        run = create_dag_run(dag_id="example_deferral_wait", logical_date=timezone.now())
        user("dana", "Viewer")
        log_in(page, live_server.url, "dana")
        grid = reverse("runs:grid", args=["example_deferral_wait"])
        page.goto(f"{live_server.url}{grid}?{urlencode({'run_id': run.run_id, 'task_id': 'wait_for_n_seconds'})}")
        # The grid cell, the panel's counts and the table all say deferred while the triggers wait.
        expect(page.locator(f"#cell-{run.pk}-wait_for_n_seconds")).to_have_class(re.compile(r"state-deferred"))
        expect(page.locator("#mapped-summary")).to_contain_text("deferred")
        expect(page.locator("#mapped-instances")).to_contain_text("deferred")
        screenshot(page, "deferral_deferred")
        page.locator("#mapped-instances tbody tr").nth(1).locator("a").first.click()
        settled(page)
        expect(page.locator("#ti-trigger")).to_contain_text("dagsapp.triggers.DateTimeTrigger")
        expect(page.locator("#details")).to_contain_text("execute_complete")

        run = wait_for_dag_run(run, timeout=60)
        assert run.state == "success", stack.report(tail=3000)
        page.goto(f"{live_server.url}{grid}?{urlencode({'run_id': run.run_id, 'task_id': 'wait_for_n_seconds'})}")
        expect(page.locator("#mapped-summary")).to_contain_text("2 success")
        expect(page.locator("#mapped-instances")).not_to_contain_text("deferred")
        screenshot(page, "deferral_success")
