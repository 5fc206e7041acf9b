"""The mapped panel of a nested-mapped task (issue 9): instances by path of indexes, grouped by
outer index, each outer index cleared on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from runs.cli import run_dag_run_inline
from runs.models import DagRun, TaskInstance
from tests.runs.factories import make_run

NESTED = """
@task
def sites():
    return [2, 3, 1]

@task_group
def crawl(n):
    @task
    def pages(n):
        return [f"p{i}" for i in range(n)]

    @task(map_index_template="{{ task.op_kwargs['page'] }}")
    def fetch(page):
        return page

    @task
    def site_total(values):
        return len(values)

    site_total(fetch.expand(page=pages(n)))

with DAG("nested_view") as the_dag:
    crawl.expand(n=sites())
"""


@pytest.fixture
def run(db: None, tmp_path: Path) -> DagRun:
    return run_dag_run_inline(make_run(tmp_path, NESTED, dag_id="nested_view"))


def _panel(run: DagRun, **query: str) -> str:
    url = reverse("runs:task_panel", args=[run.dag_id, run.run_id, "crawl.fetch"])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _states(run: DagRun) -> dict[tuple[int, ...], str]:
    return {tuple(p): s for p, s in TaskInstance.objects.filter(dag_run=run, task_id="crawl.fetch").values_list("map_path", "state")}


class NestedPanelTests:
    def test_it_lists_instances_by_path_and_groups_them_by_outer_index(self, operator_client: Client, run: DagRun) -> None:
        html = operator_client.get(_panel(run)).content.decode()
        assert "[6]" in html  # the total of every outer index
        assert "By crawl index" in html
        for outer in range(3):
            assert f'id="outer-{outer}"' in html and f'id="clear-outer-{outer}"' in html
        # Rows read [outer][inner], in path order.
        order = [html.index(label) for label in (">[0][0]<", ">[0][1]<", ">[1][0]<", ">[1][2]<", ">[2][0]<")]
        assert order == sorted(order)

    def test_it_shows_one_outer_index_on_its_own(self, operator_client: Client, run: DagRun) -> None:
        html = operator_client.get(_panel(run, outer="1")).content.decode()
        assert ">[1][0]<" in html and ">[1][2]<" in html
        assert ">[0][0]<" not in html and ">[2][0]<" not in html
        assert "3 instances" in html

    def test_it_clears_one_outer_index_and_leaves_the_others(self, operator_client: Client, run: DagRun) -> None:
        url = reverse("runs:task_clear_outer", args=[run.dag_id, run.run_id, "crawl.fetch"])
        response = operator_client.post(url, {"outer": "1", "downstream": "on"})
        assert response.status_code in (200, 302)
        states = _states(run)
        assert {p: s for p, s in states.items() if p[0] == 1} == {(1, 0): "none", (1, 1): "none", (1, 2): "none"}
        assert {s for p, s in states.items() if p[0] != 1} == {"success"}
        # Downstream inside the group: only site_total [1].
        totals = dict(TaskInstance.objects.filter(dag_run=run, task_id="crawl.site_total").values_list("map_index", "state"))
        assert totals == {0: "success", 1: "none", 2: "success"}
        run.refresh_from_db()
        assert run.state == "running"

    def test_it_lists_what_clearing_an_outer_index_touches_before_it_does(self, operator_client: Client, run: DagRun) -> None:
        url = reverse("runs:task_action_dialog", args=[run.dag_id, run.run_id, "crawl.fetch"])
        html = operator_client.get(url, {"action": "clear_outer", "outer": "1"}, HTTP_HX_REQUEST="true").content.decode()
        assert "Clear crawl.fetch [1]" in html and "3 instances under [1] will be cleared" in html
        assert "crawl.fetch [1][0]" in html and "crawl.fetch [0][0]" not in html
        assert reverse("runs:task_clear_outer", args=[run.dag_id, run.run_id, "crawl.fetch"]) in html
        assert set(_states(run).values()) == {"success"}  # a GET changes nothing
        assert operator_client.get(url, {"action": "clear_outer", "outer": "x"}).status_code == 400

    def test_it_refuses_a_viewer_the_outer_clear(self, viewer_client: Client, run: DagRun) -> None:
        url = reverse("runs:task_clear_outer", args=[run.dag_id, run.run_id, "crawl.fetch"])
        assert viewer_client.post(url, {"outer": "1"}).status_code == 403
        assert set(_states(run).values()) == {"success"}

    def test_it_reads_the_panel_in_the_same_number_of_queries_whatever_the_number_of_outer_indexes(
            self, operator_client: Client, run: DagRun, tmp_path: Path) -> None:
        counts = []
        for sites in ([2, 3, 1], [1] * 40):
            folder = tmp_path / str(len(sites))
            folder.mkdir()
            r = run_dag_run_inline(make_run(folder, NESTED.replace("[2, 3, 1]", repr(sites)), dag_id="nested_view"))
            with CaptureQueriesContext(connection) as ctx:
                assert operator_client.get(_panel(r)).status_code == 200
            counts.append(len(ctx.captured_queries))
        assert counts[0] == counts[1]
