"""Nested mapping in the browser (issue 9): the mapped panel of ``crawl.fetch`` lists instances by
path, grouped by outer index; an Operator shows one outer index alone and clears it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from runs.cli import run_dag_run_inline
from runs.models import TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from tests.browser.conftest import screenshot
from tests.browser.test_dashboard_story import log_in, settled, user

pytestmark = pytest.mark.django_db(transaction=True)


class NestedPanelStoryTests:
    def test_an_operator_reads_instances_by_outer_index_and_clears_one(self, live_server: Any, page: Page, tmp_path: Any) -> None:
        process_dags_folder()
        run = run_dag_run_inline(create_dag_run(dag_id="example_nested_mapping"))
        assert run.state == "success"
        user("nina", "Operator")
        log_in(page, live_server.url, "nina")
        grid = reverse("runs:grid", args=["example_nested_mapping"])
        page.goto(f"{live_server.url}{grid}?{urlencode({'run_id': run.run_id, 'task_id': 'crawl.fetch'})}")
        panel = page.locator("#task-panel")
        expect(panel.locator("h2")).to_contain_text("[6]")
        expect(page.locator("#outer-indexes")).to_contain_text("By crawl index")
        expect(page.locator("#outer-1")).to_contain_text("3 success")
        expect(page.locator("#mapped-instances")).to_contain_text("[1][2]")
        expect(page.locator("#mapped-instances")).to_contain_text("beta/page-2")
        page.screenshot(path=str(tmp_path / "nested_panel.png"), full_page=True)
        screenshot(page, "nested_panel")

        page.locator("#outer-1 a").first.click()
        settled(page)
        expect(page.locator("#mapped-instances tbody tr")).to_have_count(3)
        expect(page.locator("#mapped-instances")).not_to_contain_text("[0][0]")
        assert "outer=1" in page.url

        page.locator("#clear-outer-1").click()
        # The server's dialog names what it will clear before it does.
        expect(page.locator("#action-dialog-list")).to_contain_text("crawl.fetch [1][2] beta/page-2")
        page.screenshot(path=str(tmp_path / "nested_clear_dialog.png"), full_page=True)
        page.locator("#action-dialog-confirm").click()
        settled(page)
        expect(page.locator("#outer-1")).to_contain_text("3 no status")
        page.screenshot(path=str(tmp_path / "nested_cleared.png"), full_page=True)
        states = TaskInstance.objects.filter(dag_run=run, task_id="crawl.fetch").values_list("map_path", "state")
        assert sorted(tuple(p) for p, s in states if s == "none") == [(1, 0), (1, 1), (1, 2)]


class GraphGroupsStoryTests:
    def test_a_user_collapses_and_expands_task_groups_in_the_graph(self, live_server: Any, page: Page, tmp_path: Any) -> None:
        process_dags_folder()
        run = run_dag_run_inline(create_dag_run(dag_id="example_nested_mapping"))
        user("gus", "Viewer")
        log_in(page, live_server.url, "gus")
        page.goto(f"{live_server.url}{reverse('runs:graph', args=['example_nested_mapping'])}?{urlencode({'run_id': run.run_id})}")
        expect(page.locator('[id="node-crawl.fetch"]')).to_be_visible()
        page.locator("#collapse-all").click()
        # Every group is one node, coloured by its tasks; its tasks are gone from the drawing.
        expect(page.locator('[id="group-node-crawl"]')).to_have_class(re.compile(r"state-success"))
        expect(page.locator('[id="node-crawl.fetch"]')).to_have_count(0)
        expect(page.locator('[id="group-node-audit"]')).to_be_visible()
        page.screenshot(path=str(tmp_path / "graph_collapsed.png"), full_page=True)
        # A click on a collapsed group expands it alone; the others stay collapsed.
        page.locator('[id="group-node-crawl"] a').click()
        expect(page.locator('[id="node-crawl.fetch"]')).to_be_visible()
        expect(page.locator('[id="group-node-audit"]')).to_be_visible()
        assert "collapsed=audit" in page.url
        page.screenshot(path=str(tmp_path / "graph_one_expanded.png"), full_page=True)
        # The label of an expanded group collapses it again.
        page.locator('[id="group-crawl"] a text').first.click()
        expect(page.locator('[id="group-node-crawl"]')).to_be_visible()
        # Back and Forward walk through the same drawings, each a whole page.
        page.go_back()
        expect(page.locator('[id="node-crawl.fetch"]')).to_be_visible()
        expect(page.locator(".graph-page h1, #dag-header")).not_to_have_count(0)
        page.go_forward()
        expect(page.locator('[id="group-node-crawl"]')).to_be_visible()
        expect(page.locator("#dag-header")).to_be_visible()
