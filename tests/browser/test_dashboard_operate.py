"""Operating runs from the dashboard as an Airflow 3 user expects (issue 12): each test one user's story."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Page, expect

from runs.models import DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.scheduling.steps import expand_mapped_task
from runs.services import create_dag_run
from tests.browser.test_dashboard_story import log_in, settled, user
from tests.runs.web.views.conftest import expand

pytestmark = pytest.mark.django_db(transaction=True)


def finished_run(n: int, *, dag_id: str = "example_add") -> DagRun:
    """A finished run of example_add with ``add`` expanded to n successful instances."""
    run = create_dag_run(dag_id=dag_id, logical_date=timezone.now())
    expand(run, "add", n, state="success")
    TaskInstance.objects.filter(dag_run=run, map_index=-1).update(state="success", try_number=1)
    DagRun.objects.filter(pk=run.pk).update(state="success", start_date=timezone.now(), end_date=timezone.now())
    run.refresh_from_db()
    return run


def whole_page(page: Page) -> None:
    """A page with its header and styles, never a bare fragment."""
    expect(page.locator("header.topbar")).to_be_visible()
    assert page.evaluate("() => getComputedStyle(document.body).margin") == "0px", "app.css is applied"


def shot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


class BackAndForwardTests:
    def test_it_shows_a_whole_page_on_back_and_forward_after_every_kind_of_navigation(
        self, live_server: Any, page: Page, tmp_path: Path,
    ) -> None:
        process_dags_folder()
        run = finished_run(120)
        user("bea", "Viewer")
        base = live_server.url
        log_in(page, base, "bea")
        page.goto(f"{base}/dags/example_add/grid/")

        # A grid cell opens the panel by htmx and pushes its URL; the breadcrumb leaves the page.
        page.locator(f"#cell-{run.pk}-add").click()
        expect(page.locator("#task-panel")).to_be_visible()
        expect(page).to_have_url(re.compile(r"task_id=add"))
        settled(page)
        page.locator("nav.breadcrumbs a", has_text="DAGs").click()
        expect(page.locator("#dag-table")).to_be_visible()
        page.go_back()
        whole_page(page)
        expect(page.locator("#details #task-panel")).to_be_visible()
        page.go_forward()
        whole_page(page)
        expect(page.locator("#dag-table")).to_be_visible()
        page.go_back()
        whole_page(page)
        settled(page)

        # The panel's page 2 (pushed), then the Graph tab.
        page.locator("#task-panel a[rel=next]").click()
        expect(page).to_have_url(re.compile(r"page=2"))
        expect(page.locator("#task-panel .pager")).to_contain_text("page 2 of 3")
        settled(page)
        page.locator(".view-tabs a", has_text="Graph").click()
        expect(page).to_have_url(re.compile(r"/graph/"))
        page.go_back()
        whole_page(page)
        expect(page.locator("#task-panel .pager")).to_contain_text("page 2 of 3")
        page.go_forward()
        whole_page(page)
        expect(page).to_have_url(re.compile(r"/graph/"))
        page.go_back()
        settled(page)

        # One instance from the table (pushes the Grid's URL with map_index), then the Duration chart.
        page.locator("#ti-add-60 a").first.click()
        expect(page.locator("#instance-panel h2")).to_contain_text("[60]")
        expect(page).to_have_url(re.compile(r"map_index=60"))
        settled(page)
        page.locator("#all-instances").click()
        expect(page.locator("#task-panel")).to_be_visible()
        settled(page)
        page.locator("#task-panel a", has_text="Duration chart").click()
        expect(page).to_have_url(re.compile(r"/durations/"))
        page.go_back()
        whole_page(page)
        expect(page.locator("#details #task-panel")).to_be_visible()
        page.go_back()
        whole_page(page)
        expect(page.locator("#instance-panel h2")).to_contain_text("[60]")
        shot(page, tmp_path, "back-to-instance")


class ExpansionReasonTests:
    def test_it_shows_why_an_expansion_over_the_limit_failed_with_a_link_to_its_log(
        self, live_server: Any, page: Page, tmp_path: Path, settings: Any,
    ) -> None:
        process_dags_folder()
        settings.MAX_MAP_LENGTH = 2
        run = create_dag_run(dag_id="example_add")
        data = run.serialized_dag.dag_data()
        assert expand_mapped_task(dag_run=run, data=data, task_id="add") == 0
        user("eve", "Viewer")
        base = live_server.url
        log_in(page, base, "eve")
        page.goto(f"{base}/dags/example_add/grid/")
        expect(page.locator(f"#cell-{run.pk}-add")).to_have_class(re.compile(r"\bstate-failed\b"))
        page.locator(f"#cell-{run.pk}-add").click()
        outcome = page.locator("#expansion-outcome")
        expect(outcome).to_contain_text("Not expanded: failed.")
        expect(outcome).to_contain_text("3 items")
        expect(page.locator("#task-panel h2 .state-text")).to_have_text("failed")
        shot(page, tmp_path, "expansion-failed")
        page.locator("#expansion-log").click()
        expect(page.locator("#log-lines")).to_contain_text("Cannot expand mapped task 'add'")
        whole_page(page)


class RunConfTests:
    def test_it_shows_a_large_conf_collapsed_and_pretty_prints_it_on_demand(self, live_server: Any, page: Page, tmp_path: Path) -> None:
        process_dags_folder()
        run = create_dag_run(dag_id="example_add", conf={"items": list(range(1000)), "label": "a long list"})
        DagRun.objects.filter(pk=run.pk).update(state="running")  # the grid refreshes itself every 2 s
        user("cora", "Viewer")
        base = live_server.url
        log_in(page, base, "cora")
        page.goto(f"{base}/dags/example_add/grid/")
        conf = page.locator(f"#run-conf-{run.pk}")
        expect(conf).to_contain_text("2 keys")
        height = page.locator(".grid-wrap").bounding_box()["height"]  # type: ignore[index]
        assert height < 300, f"the grid column is {height} px tall"
        shot(page, tmp_path, "conf-collapsed")
        conf.locator("summary").click()
        pretty = conf.locator("pre.conf-json")
        expect(pretty).to_contain_text('"label": "a long list"')
        expect(pretty).to_contain_text("999")
        box = pretty.bounding_box()
        assert box is not None and box["height"] < 450, "the pretty conf scrolls in a box of its own"
        page.wait_for_timeout(2500)  # past a refresh of the grid, the conf stays open
        expect(pretty).to_be_visible()
        shot(page, tmp_path, "conf-open")


class ConsistentFiguresTests:
    def test_it_shows_a_state_bar_and_no_stale_figures_after_a_clear(self, live_server: Any, page: Page, tmp_path: Path) -> None:
        process_dags_folder()
        run = finished_run(9)
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index__in=[3, 7]).update(state="failed", hostname="worker-1")
        DagRun.objects.filter(pk=run.pk).update(state="failed", state_summary=None)
        user("fay", "Operator")
        base = live_server.url
        log_in(page, base, "fay")
        page.goto(f"{base}/dags/example_add/grid/")
        page.locator(f"#cell-{run.pk}-add").click()
        bar = page.locator("#progress .state-bar")
        expect(bar.locator(".segment")).to_have_count(2)
        expect(bar.locator(".segment.state-success")).to_have_attribute("title", "7 success")
        expect(bar.locator(".segment.state-failed")).to_have_attribute("title", "2 failed")
        expect(page.locator("#progress")).to_contain_text("9 of 9 done · 7 success, 2 failed")
        shot(page, tmp_path, "state-bar")
        settled(page)

        page.locator("#ti-add-3 a").first.click()
        details = page.locator("#ti-details")
        expect(details).to_contain_text("worker-1")
        page.locator("#clear-instance").click()
        page.locator("#action-dialog-confirm").click()
        expect(page.locator("#ti-state")).to_have_text("no status")
        expect(details.locator("dt:has-text('Host') + dd")).to_have_text("–")
        expect(details.locator("dt:has-text('Start') + dd")).to_have_text("–")
        expect(details.locator("dt:has-text('Duration') + dd")).to_have_text("–")
        shot(page, tmp_path, "cleared-instance")


class RunViewTests:
    def test_an_operator_opens_a_run_and_clears_only_its_failed_instances(self, live_server: Any, page: Page, tmp_path: Path) -> None:
        process_dags_folder()
        older = finished_run(4)
        run = finished_run(6)
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index__in=[2, 5]).update(state="failed")
        TaskInstance.objects.filter(dag_run=run, task_id="total").update(state="upstream_failed")
        start = timezone.now() - timedelta(minutes=5)
        DagRun.objects.filter(pk=older.pk).update(start_date=start, end_date=start + timedelta(seconds=30))
        DagRun.objects.filter(pk=run.pk).update(state="failed", state_summary=None, start_date=start, end_date=start + timedelta(seconds=90))
        user("otto", "Operator")
        base = live_server.url
        log_in(page, base, "otto")
        page.goto(f"{base}/dags/example_add/grid/")
        assert page.locator(f"#run-{run.pk}").bounding_box()["height"] > 2 * page.locator(f"#run-{older.pk}").bounding_box()["height"]  # type: ignore[index]

        page.locator(f"#run-{run.pk}").click()
        panel = page.locator("#run-panel")
        expect(panel.locator("#run-state")).to_have_text("failed")
        expect(panel.locator("#run-details")).to_contain_text(run.run_id)
        expect(panel.locator("#run-duration")).to_have_text("1m 30s")
        expect(panel.locator("#run-counts")).to_contain_text("2 failed")
        expect(panel.locator("#run-counts")).to_contain_text("1 upstream failed")
        expect(page).to_have_url(re.compile(r"run_id="))
        shot(page, tmp_path, "run-view")
        settled(page)

        page.locator("#run-clear-failed").click()
        dialog = page.locator("dialog#action-dialog")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#action-dialog-summary")).to_contain_text("3 task instances will be cleared")
        expect(dialog.locator("#action-dialog-list")).to_contain_text("add: 2 failed")
        # Unticking "only failed" shows what clearing the whole run would touch, before anything happens.
        dialog.locator("#option-only_failed").uncheck()
        expect(dialog.locator("#action-dialog-summary")).to_contain_text("7 task instances will be cleared")
        dialog.locator("#option-only_failed").check()
        expect(dialog.locator("#action-dialog-summary")).to_contain_text("3 task instances will be cleared")
        shot(page, tmp_path, "run-clear-dialog")
        dialog.locator("#action-dialog-confirm").click()
        expect(page.locator("#messages")).to_contain_text("Cleared 3 failed and upstream-failed task instances")
        expect(page.locator("dialog#action-dialog")).to_have_count(0)
        expect(panel.locator("#run-state")).to_have_text("running")
        # The grid hears of it too (the action's HX-Trigger), without a reload.
        expect(page.locator(f"#run-{run.pk}")).to_have_class(re.compile(r"\bstate-running\b"))
        states = dict(TaskInstance.objects.filter(dag_run=run, task_id="add").values_list("map_index", "state"))
        assert states == {0: "success", 1: "success", 2: "none", 3: "success", 4: "success", 5: "none"}
        shot(page, tmp_path, "run-cleared")


class ClearDialogTests:
    def test_the_clear_dialog_lists_what_it_will_clear_with_downstream_and_the_bulk_buttons_wait_for_a_selection(
        self, live_server: Any, page: Page, tmp_path: Path,
    ) -> None:
        process_dags_folder()
        run = finished_run(6)
        user("dora", "Operator")
        base = live_server.url
        log_in(page, base, "dora")
        page.goto(f"{base}/dags/example_add/grid/?{urlencode({'run_id': run.run_id, 'task_id': 'add'})}")
        clear = page.locator("#bulk-clear")
        expect(clear).to_be_disabled()
        expect(page.locator("#bulk-actions")).to_contain_text("0 selected")
        page.locator("#ti-add-4 input.sel").check()
        page.locator("#ti-add-2 input.sel").check()
        expect(clear).to_be_enabled()
        expect(page.locator("#bulk-actions")).to_contain_text("2 selected")
        clear.click()
        dialog = page.locator("dialog#action-dialog")
        expect(dialog.locator("h2")).to_have_text("Clear 2 selected instances of add")
        expect(dialog.locator("#action-dialog-summary")).to_have_text("2 instances will be cleared and run again.")
        dialog.locator("#option-downstream").check()
        expect(dialog.locator("#action-dialog-summary")).to_have_text("3 instances will be cleared and run again.")
        expect(dialog.locator("#action-dialog-list li")).to_have_text(["add [2, 4]: 2 instances", "total: 1 instance"])
        shot(page, tmp_path, "clear-dialog")
        # Cancel leaves everything as it was.
        dialog.locator("#action-dialog-cancel").click()
        expect(page.locator("dialog#action-dialog")).to_have_count(0)
        assert set(TaskInstance.objects.filter(dag_run=run).values_list("state", flat=True)) == {"success"}

        clear.click()
        dialog.locator("#option-downstream").check()
        expect(dialog.locator("#action-dialog-summary")).to_have_text("3 instances will be cleared and run again.")
        dialog.locator("#action-dialog-confirm").click()
        expect(page.locator("#messages")).to_contain_text("Cleared 3: add [2, 4], total.")
        expect(page.locator("dialog#action-dialog")).to_have_count(0)
        expect(page.locator("#ti-add-4")).to_contain_text("no status")
        expect(page.locator(f"#run-{run.pk}")).to_have_class(re.compile(r"\bstate-running\b"))
        expect(clear).to_be_disabled()
        shot(page, tmp_path, "cleared-selection")
        states = dict(TaskInstance.objects.filter(dag_run=run, task_id="add").values_list("map_index", "state"))
        assert [i for i, s in sorted(states.items()) if s == "none"] == [2, 4]


class InstancesAtScaleTests:
    def test_it_picks_instance_73512_of_100000_by_typing(self, live_server: Any, page: Page, tmp_path: Path) -> None:
        process_dags_folder()
        run = create_dag_run(dag_id="example_add", logical_date=timezone.now())
        TaskInstance.objects.filter(dag_run=run, task_id="add").delete()
        with connection.cursor() as cur:
            cur.execute(
                "INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, state, try_number, max_tries, hostname,"
                " keep_unchanged, updated_at, rendered_map_index, duration)"
                " SELECT %s, 'add', i, 'success', 1, 0, '', false, now(), 'row-' || i, 0.02 FROM generate_series(0, 99999) AS i",
                [run.pk])
        TaskInstance.objects.filter(dag_run=run, map_index=-1).update(state="success", try_number=1)
        DagRun.objects.filter(pk=run.pk).update(state="success")
        user("pia", "Viewer")
        base = live_server.url
        log_in(page, base, "pia")
        page.goto(f"{base}/dags/example_add/grid/?{urlencode({'run_id': run.run_id, 'task_id': 'add'})}")
        expect(page.locator("#task-panel h2")).to_contain_text("[100000]")
        pick = page.locator("#mapped-instance-pick")
        expect(pick).to_have_attribute("placeholder", "index or name, of 100,000")
        pick.press_sequentially("73512", delay=40)
        expect(page.locator("#instance-suggestions option").first).to_have_attribute("value", "73512")
        expect(page.locator("#instance-suggestions option").first).to_have_text("73512: row-73512")
        shot(page, tmp_path, "picker-suggestions")
        pick.press("Enter")
        expect(page.locator("#instance-panel h2")).to_contain_text("[73512]")
        expect(page.locator("#instance-panel h2")).to_contain_text("row-73512")
        expect(page).to_have_url(re.compile(r"pick=73512"))
        page.reload()
        whole_page(page)
        expect(page.locator("#instance-panel h2")).to_contain_text("[73512]")

        # Back to all instances: the pager has numbered pages and a jump.
        page.locator("#all-instances").click()
        pager = page.locator("#pager")
        expect(pager).to_contain_text("2,000")
        page.locator("#page-jump-input").fill("1471")
        page.locator("#pager button", has_text="Go").click()
        expect(pager.locator(".current")).to_have_text("1,471")
        expect(page.locator("#ti-add-73500")).to_be_visible()
        shot(page, tmp_path, "pager-jump")


class NewRunsTests:
    def test_a_run_triggered_from_the_cli_appears_on_an_open_grid_and_dag_list_unless_auto_refresh_is_off(
        self, live_server: Any, page: Page, tmp_path: Path,
    ) -> None:
        process_dags_folder()
        first = finished_run(3)
        user("nina", "Viewer")
        base = live_server.url
        log_in(page, base, "nina")
        page.goto(f"{base}/dags/example_add/grid/")
        expect(page.locator(".run-bar")).to_have_count(1)
        second = create_dag_run(dag_id="example_add")  # what `manage.py dags trigger example_add` does
        expect(page.locator(f"#run-{second.pk}")).to_be_visible(timeout=12_000)
        expect(page.locator(f"#run-{first.pk}")).to_be_visible()

        page.goto(f"{base}/")
        create_dag_run(dag_id="example_add")
        expect(page.locator("#dag-example_add .sq")).to_have_count(3, timeout=12_000)
        shot(page, tmp_path, "dag-list-new-run")

        # Auto-refresh off (remembered across pages): the page stays as the reader left it.
        page.locator("#auto-refresh").uncheck()
        page.goto(f"{base}/dags/example_add/grid/")
        expect(page.locator("#auto-refresh")).not_to_be_checked()
        create_dag_run(dag_id="example_add")
        page.wait_for_timeout(7_000)
        expect(page.locator(".run-bar")).to_have_count(3)
        page.locator("#auto-refresh").check()
        expect(page.locator(".run-bar")).to_have_count(4, timeout=12_000)


class GanttTests:
    def test_the_gantt_of_a_run_with_a_mapped_task_opens_into_its_instances(self, live_server: Any, page: Page, tmp_path: Path) -> None:
        process_dags_folder()
        run = finished_run(80)
        t0 = timezone.now() - timedelta(minutes=5)
        for i in range(80):
            TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=i).update(
                queued_at=t0 + timedelta(seconds=i % 10), start_date=t0 + timedelta(seconds=5 + i % 10 + i // 10 * 4),
                end_date=t0 + timedelta(seconds=8 + i % 10 + i // 10 * 4 + (20 if i == 33 else 0)))
        TaskInstance.objects.filter(dag_run=run, task_id="total").update(queued_at=t0 + timedelta(seconds=70), start_date=t0 + timedelta(seconds=72),
                                                                         end_date=t0 + timedelta(seconds=75))
        DagRun.objects.filter(pk=run.pk).update(state_summary=None)
        user("gus", "Viewer")
        base = live_server.url
        log_in(page, base, "gus")
        page.goto(f"{base}/dags/example_add/grid/")
        page.locator(f"#run-{run.pk}").click()
        page.locator("#run-gantt-link").click()
        whole_page(page)
        add = page.locator("#gantt-add")
        expect(add).to_contain_text("add [80]")
        expect(add.locator("rect.queued")).to_have_count(1)
        total = page.locator("#gantt-total rect.run")
        add_box, total_box = add.locator("rect.run").bounding_box(), total.bounding_box()
        assert add_box and total_box and total_box["x"] > add_box["x"] + add_box["width"] - 1, "total starts after add ends"
        shot(page, tmp_path, "gantt")
        add.locator("a").click()
        expect(page.locator("#gantt .gantt-row.instance")).to_have_count(50)
        expect(page.locator("#gantt-pager")).to_contain_text("instances page 1 of 2")
        page.locator("#gantt-pager a[rel=next]").click()
        expect(page.locator("#gantt .gantt-row.instance")).to_have_count(30)
        shot(page, tmp_path, "gantt-instances")


class GraphTests:
    def test_an_instance_opened_from_the_graph_keeps_a_graph_url_and_switching_runs_keeps_the_task(
        self, live_server: Any, page: Page, tmp_path: Path,
    ) -> None:
        process_dags_folder()
        older = finished_run(3)
        finished_run(4)
        DagRun.objects.filter(pk=older.pk).update(logical_date=timezone.now() - timedelta(hours=1))
        user("hal", "Operator")
        base = live_server.url
        log_in(page, base, "hal")
        page.goto(f"{base}/dags/example_add/graph/")
        expect(page.locator("#dag-header #trigger")).to_be_visible()
        expect(page.locator("#dag-header")).to_contain_text("schedule")
        page.locator('[id="node-add"] a').click()
        expect(page.locator("#details #task-panel")).to_be_visible()
        settled(page)
        # A sort of the table pushes its own request, which says it lives in the Graph.
        page.locator("#mapped-instances th a", has_text="Duration").click()
        expect(page).to_have_url(re.compile(r"view=graph"))
        settled(page)
        page.locator("#ti-add-2 a").first.click()
        expect(page.locator("#instance-panel h2")).to_contain_text("[2]")
        expect(page).to_have_url(re.compile(r"/graph/\?run_id=.*task_id=add.*map_index=2"))
        page.reload()
        whole_page(page)
        expect(page.locator(".graph-page")).to_be_visible()
        expect(page.locator("#instance-panel h2")).to_contain_text("[2]")
        shot(page, tmp_path, "graph-instance")
        page.select_option("#graph-run-select", older.run_id)
        expect(page).to_have_url(re.compile(r"task_id=add"))
        expect(page.locator("#details #task-panel h2")).to_contain_text("[3]")
        expect(page.locator(".graph-legend")).to_be_in_viewport()
