"""The user's story in a real browser: a run of example_add on a live scheduler and Celery worker,
read in the Grid, one mapped instance's log read and cleared, seen running again, then the Graph."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import Page, expect

from runs.models import DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.scheduling.steps import expand_mapped_task
from runs.services import create_dag_run
from tests.browser.conftest import screenshot
from tests.conftest import LiveStack

pytestmark = pytest.mark.django_db(transaction=True)

RUN_TIMEOUT_MS = 60_000


def user(name: str, group: str) -> User:
    u = User.objects.create_user(username=name, password=f"pw-{name}-123")
    u.groups.add(Group.objects.get_or_create(name=group)[0])
    return u


def log_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"pw-{name}-123")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".topbar .who")).to_have_text(name)


def wait_for_run(timeout: float, stack: LiveStack | None = None) -> DagRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = DagRun.objects.filter(dag_id="example_add").order_by("-logical_date").first()
        if run is not None and run.is_finished:
            return run
        time.sleep(0.3)
    pytest.fail("example_add did not finish" + (f"\n{stack.report()}" if stack else ""))


def settled(page: Page) -> None:
    """htmx has swapped and processed the new content (a pick made sooner would find no handler)."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-added, .htmx-settling')")


def open_instance(page: Page, map_index: int) -> None:
    """From the Grid: the mapped row, then one instance typed into the Mapped Instances picker."""
    page.locator("#label-add").click()
    expect(page.locator("#task-panel")).to_be_visible()
    settled(page)
    page.locator("#mapped-instance-pick").fill(str(map_index))
    page.locator("#mapped-instance-pick").press("Enter")
    expect(page.locator("#instance-panel h2")).to_contain_text(f"[{map_index}]")


class DashboardStoryTests:
    def test_an_operator_reads_and_clears_one_mapped_instance(
        self, live_server: Any, live_stack: Callable[..., LiveStack], page: Page,
    ) -> None:
        process_dags_folder()
        stack = live_stack()
        user("olga", "Operator")
        base = live_server.url
        # The pages run under a Content-Security-Policy: anything it blocks is a broken feature.
        refused: list[str] = []
        page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)

        log_in(page, base, "olga")
        page.goto(f"{base}/dags/example_add/grid/")
        page.locator("#trigger").click()  # the trigger page: example_add has no Params, only the conf
        page.locator("#trigger-submit").click()
        run = wait_for_run(RUN_TIMEOUT_MS / 1000, stack)
        assert run.state == "success", stack.report()

        # The grid refreshes itself while the run is active, and shows the mapped task's count.
        expect(page.locator("#label-add")).to_have_text("add [3]", timeout=RUN_TIMEOUT_MS)
        expect(page.locator(f"#cell-{run.pk}-add")).to_have_class(re.compile(r"\bstate-success\b"))
        screenshot(page, "1-grid")

        open_instance(page, 1)
        page.locator("#tab-log").click()
        expect(page.locator("#log-lines")).to_contain_text("adding 2 + 10")
        screenshot(page, "2-instance-log")

        # The clear opens a dialog that names what it will clear (no browser confirm()).
        page.locator("#clear-instance").click()
        dialog = page.locator("dialog#action-dialog")
        expect(dialog.locator("h2")).to_have_text("Clear add [1]")
        expect(dialog.locator("#action-dialog-list")).to_contain_text("add [1]: 1 instance")
        dialog.locator("#action-dialog-confirm").click()
        # It runs again (try 2) and turns green, while the panel refreshes itself.
        expect(page.locator("#ti-state")).to_have_text("success", timeout=RUN_TIMEOUT_MS)
        expect(page.locator(".ti-summary")).to_contain_text("try 2", timeout=RUN_TIMEOUT_MS)
        # The whole panel follows, not only the summary: the Log tab (still open) has both tries and
        # shows the new one; the Details tab says the same as the summary.
        expect(page.locator("#try-select option")).to_have_count(2)
        expect(page.locator("#try-select")).to_have_value("2")
        expect(page.locator("#log-lines")).to_contain_text("Starting attempt 2")
        page.locator("#tab-details").click()
        details = page.locator("#ti-details")
        expect(details.locator("dd").first).to_have_text("success")
        expect(details).to_contain_text("Try2")
        tries = dict(TaskInstance.objects.filter(dag_run=run, task_id="add").values_list("map_index", "try_number"))
        assert tries == {0: 1, 1: 2, 2: 1}, "only instance 1 ran again"
        screenshot(page, "3-cleared")

        page.locator("a", has_text="Graph").first.click()
        expect(page).to_have_url(re.compile(r"/dags/example_add/graph/"))
        node = page.locator('[id="node-add"]')
        expect(node.locator("text")).to_have_text("add [3]")
        expect(node).to_have_class(re.compile(r"\bstate-success\b"), timeout=RUN_TIMEOUT_MS)
        # A node opens the same details panel as the Grid, in place.
        node.locator("a").click()
        expect(page.locator("#details #task-panel")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/graph/\?run_id=.*&task_id=add"))
        screenshot(page, "4-graph")
        assert not refused, refused

    def test_a_viewer_reads_but_cannot_clear(self, live_server: Any, page: Page) -> None:
        process_dags_folder()
        run = create_dag_run(dag_id="example_add")
        assert expand_mapped_task(dag_run=run, data=run.serialized_dag.data, task_id="add") == 3
        TaskInstance.objects.filter(dag_run=run).update(state="success", try_number=1)
        DagRun.objects.filter(pk=run.pk).update(state="success")
        user("vera", "Viewer")
        base = live_server.url

        log_in(page, base, "vera")
        page.goto(f"{base}/dags/example_add/grid/")
        expect(page.locator("#label-add")).to_have_text("add [3]")
        open_instance(page, 1)
        expect(page.locator("#clear-instance")).to_have_count(0)
        expect(page.locator("#trigger")).to_have_count(0)

        # Posting anyway, with a valid CSRF token, is refused and changes nothing.
        csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
        response = page.request.post(
            f"{base}/dags/example_add/runs/{run.run_id}/tasks/add/mapped/1/clear/",
            headers={"X-CSRFToken": csrf, "Referer": f"{base}/"},
        )
        assert response.status == 403
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=1)
        assert (ti.state, ti.try_number) == ("success", 1)

        page.goto(f"{base}/dags/example_add/graph/")
        expect(page.locator('[id="node-add"] text')).to_have_text("add [3]")

    def test_the_grid_follows_the_run_a_user_selects(self, live_server: Any, page: Page) -> None:
        process_dags_folder()
        older = create_dag_run(dag_id="example_add", logical_date=timezone.now() - timedelta(hours=1))
        newer = create_dag_run(dag_id="example_add")
        for run, n in ((older, 3), (newer, 2)):
            data = dict(run.serialized_dag.data)
            expand_mapped_task(dag_run=run, data=data, task_id="add")
            TaskInstance.objects.filter(dag_run=run, task_id="add", map_index__gte=n).update(state="removed")
        # The newer run is active, so the grid refreshes itself every 2s.
        DagRun.objects.filter(pk=older.pk).update(state="success")
        DagRun.objects.filter(pk=newer.pk).update(state="running")
        user("gina", "Viewer")
        base = live_server.url

        log_in(page, base, "gina")
        page.goto(f"{base}/dags/example_add/grid/")
        expect(page.locator("#label-add")).to_have_text("add [2]")
        expect(page.locator("#run-info")).to_contain_text(newer.run_id)
        page.locator(f"#cell-{older.pk}-add").click()
        expect(page.locator("#task-panel h2")).to_contain_text("[3]")
        expect(page).to_have_url(re.compile(r"run_id=.*&task_id=add"))
        # Past a refresh of the grid, the selection, the [N] labels and the run line are the clicked run's.
        page.wait_for_timeout(2600)
        expect(page.locator("#label-add")).to_have_text("add [3]")
        expect(page.locator("#run-info")).to_contain_text(older.run_id)
        expect(page.locator(f"#cell-{older.pk}-add")).to_have_class(re.compile(r"\bselected\b"))
        expect(page.locator(f"#run-{older.pk}")).to_have_class(re.compile(r"\bselected\b"))
        screenshot(page, "5-grid-selected-run")

    def test_the_graph_picks_a_run_and_a_ticked_row_pauses_the_panel(self, live_server: Any, page: Page) -> None:
        """What runs without inline script under the Content-Security-Policy: the Graph's run picker
        and the panel's poll, which waits while the user has a row ticked."""
        process_dags_folder()
        older = create_dag_run(dag_id="example_add", logical_date=timezone.now() - timedelta(hours=1))
        newer = create_dag_run(dag_id="example_add")
        for run, n in ((older, 3), (newer, 2)):
            expand_mapped_task(dag_run=run, data=dict(run.serialized_dag.data), task_id="add")
            TaskInstance.objects.filter(dag_run=run, task_id="add", map_index__gte=n).update(state="removed")
        DagRun.objects.filter(pk=older.pk).update(state="success")
        DagRun.objects.filter(pk=newer.pk).update(state="running")
        user("gabi", "Operator")
        base = live_server.url
        refused: list[str] = []
        page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)

        log_in(page, base, "gabi")
        page.goto(f"{base}/dags/example_add/graph/")
        expect(page.locator('[id="node-add"] text')).to_have_text("add [2]")
        page.select_option("#graph-run-select", older.run_id)
        expect(page).to_have_url(re.compile(r"/graph/\?run_id="))
        expect(page.locator('[id="node-add"] text')).to_have_text("add [3]")

        page.goto(f"{base}/dags/example_add/grid/?{urlencode({'run_id': newer.run_id, 'task_id': 'add'})}")
        box = page.locator("#task-panel input.sel").first
        box.check()
        TaskInstance.objects.filter(dag_run=newer, task_id="add", map_index=0).update(state="failed")
        page.wait_for_timeout(2600)
        expect(box).to_be_checked()  # not re-rendered under the user's tick
        expect(page.locator("#ti-add-0")).not_to_contain_text("failed")
        box.uncheck()
        box.evaluate("el => el.blur()")  # a field in use pauses the poll too
        expect(page.locator("#ti-add-0")).to_contain_text("failed", timeout=5000)
        assert not refused, refused
