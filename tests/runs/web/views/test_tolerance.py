"""Tolerated failures on the dashboard: the Grid cell, the mapped panel and the JSON API read
'8 of 10 succeeded, 2 failures tolerated', aggregated in SQL."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import DagRun, TaskInstance, TaskInstanceState
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from tests.runs.web.views.conftest import expand

S = TaskInstanceState

TOLERANT_DAG = """\
from __future__ import annotations
from datetime import datetime
from dagsapp.sdk import dag, task, task_group


@dag(dag_id="view_tolerant", start_date=datetime(2024, 1, 1), schedule=None)
def view_tolerant():
    @task
    def work(x: int) -> int:
        return x

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @task
    def first(x: int) -> int:
        return x

    @task
    def second(y: int) -> int:
        return y

    @task_group
    def per_item(x: int):
        return second(first(x))

    total(work.partial(max_failed_count=2).expand(x=list(range(10))))
    per_item.partial(max_failed_ratio=0.5).expand(x=[1, 2, 3, 4])


view_tolerant()
"""


@pytest.fixture
def tolerant_run(db: None, tmp_path: Path) -> Any:
    (tmp_path / "view_tolerant.py").write_text(textwrap.dedent(TOLERANT_DAG))
    process_dags_folder(tmp_path)

    def make(*, work: int = 10, work_failed: int = 2, group: int = 4, group_failed: int = 1) -> DagRun:
        run = create_dag_run(dag_id="view_tolerant", logical_date=timezone.now())
        DagRun.objects.filter(pk=run.pk).update(state="running")
        run.refresh_from_db()
        expand(run, "work", work, state=S.SUCCESS)
        TaskInstance.objects.filter(dag_run=run, task_id="work", map_index__lt=work_failed).update(state=S.FAILED)
        for task_id in ("per_item.first", "per_item.second"):
            expand(run, task_id, group, state=S.SUCCESS)
        TaskInstance.objects.filter(dag_run=run, task_id="per_item.first", map_index__lt=group_failed).update(state=S.FAILED)
        TaskInstance.objects.filter(dag_run=run, task_id="per_item.second", map_index__lt=group_failed).update(state=S.UPSTREAM_FAILED)
        return run

    return make


def _cell(body: str, run: DagRun, task_id: str) -> str:
    match = re.search(rf'<a class="cell ([^"]*)" id="cell-{run.pk}-{re.escape(task_id)}"\s+aria-label="([^"]*)"', body)
    assert match, f"no cell for {task_id}"
    return f"{match.group(1)} | {match.group(2)}"


def _panel(run: DagRun, task_id: str) -> str:
    return f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/{task_id}/"


def _api(run: DagRun, task_id: str) -> str:
    return f"/api/dags/{run.dag_id}/runs/{run.run_id}/tasks/{task_id}/mapped"


class ToleratedGridTests:
    def test_it_draws_a_tolerated_mapped_task_as_success_with_a_marker(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run()
        body = operator_client.get("/dags/view_tolerant/grid/").content.decode()
        cell = _cell(body, run, "work")
        assert "state-tolerated" in cell
        assert "8 of 10 succeeded, 2 failures tolerated" in cell

    def test_it_draws_failures_beyond_the_tolerance_as_failed(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run(work_failed=3)
        body = operator_client.get("/dags/view_tolerant/grid/").content.decode()
        assert "state-failed" in _cell(body, run, "work")

    def test_it_judges_only_once_every_index_finished(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run()
        TaskInstance.objects.filter(dag_run=run, task_id="work", map_index=9).update(state=S.RUNNING)
        body = operator_client.get("/dags/view_tolerant/grid/").content.decode()
        assert "state-tolerated" not in _cell(body, run, "work")

    def test_it_draws_a_tolerated_mapped_group_and_its_tasks(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run(group_failed=2)
        body = operator_client.get("/dags/view_tolerant/grid/").content.decode()
        assert "2 of 4 succeeded, 2 failures tolerated" in _cell(body, run, "per_item.second")
        group_row = re.search(rf'<span class="cell group ([^"]*)" role="img" aria-label="per_item · {re.escape(run.run_id)}: ([^"]*)"', body)
        assert group_row and group_row.group(1) == "state-tolerated"
        assert group_row.group(2).startswith("2 of 4 succeeded, 2 failures tolerated")

    def test_it_counts_group_indexes_not_instances(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run(group_failed=3)  # 3 of 4 indexes: beyond 50 %
        body = operator_client.get("/dags/view_tolerant/grid/").content.decode()
        assert "state-tolerated" not in _cell(body, run, "per_item.first")

    def test_it_makes_the_same_number_of_queries_for_small_and_large_runs(
        self, operator_client: Client, tolerant_run: Any, django_assert_num_queries: Any,
    ) -> None:
        small = tolerant_run(work=5, group=4)
        with CaptureQueriesContext(connection) as ctx:
            operator_client.get("/dags/view_tolerant/grid/", {"run_id": small.run_id})
        big = tolerant_run(work=300, group=300, group_failed=100)
        with django_assert_num_queries(len(ctx.captured_queries)):
            body = operator_client.get("/dags/view_tolerant/grid/", {"run_id": big.run_id}).content.decode()
        assert "100 failures tolerated" in _cell(body, big, "per_item.first")


class ToleratedPanelTests:
    def test_it_shows_the_tolerated_summary(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run()
        body = operator_client.get(_panel(run, "work"), HTTP_HX_REQUEST="true").content.decode()
        assert '<p class="tolerated" id="tolerated-summary">8 of 10 succeeded, 2 failures tolerated</p>' in body
        assert "success, failures tolerated" in body

    def test_it_shows_the_group_summary_on_a_task_of_the_group(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run()
        body = operator_client.get(_panel(run, "per_item.first")).content.decode()
        assert "3 of 4 succeeded, 1 failure tolerated" in body

    def test_it_shows_no_summary_beyond_the_tolerance(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run(work_failed=5)
        body = operator_client.get(_panel(run, "work"), HTTP_HX_REQUEST="true").content.decode()
        assert "tolerated-summary" not in body

    def test_it_makes_the_same_number_of_queries_for_small_and_large_runs(
        self, operator_client: Client, tolerant_run: Any, django_assert_num_queries: Any,
    ) -> None:
        small = tolerant_run(work=5)
        with CaptureQueriesContext(connection) as ctx:
            operator_client.get(_panel(small, "work"), HTTP_HX_REQUEST="true")
        big = tolerant_run(work=300, work_failed=2)
        with django_assert_num_queries(len(ctx.captured_queries)):
            body = operator_client.get(_panel(big, "work"), HTTP_HX_REQUEST="true").content.decode()
        assert "298 of 300 succeeded" in body


class ToleratedApiTests:
    def test_it_answers_the_tolerated_summary(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run()
        data = operator_client.get(_api(run, "work")).json()
        assert data["tolerated"] == {"succeeded": 8, "total": 10, "failed": 2,
                                     "summary": "8 of 10 succeeded, 2 failures tolerated"}

    def test_it_answers_null_beyond_the_tolerance_or_without_one(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run(work_failed=3)
        assert operator_client.get(_api(run, "work")).json()["tolerated"] is None
        assert operator_client.get(_api(run, "total")).json()["tolerated"] is None


class ToleratedGraphTests:
    def test_it_colours_a_tolerated_node_and_titles_it(self, operator_client: Client, tolerant_run: Any) -> None:
        run = tolerant_run(work_failed=1, group_failed=3)
        html = operator_client.get("/dags/view_tolerant/graph/", {"run_id": run.run_id}).content.decode()
        node = re.search(r'<g id="node-work" class="([^"]*)"', html)
        assert node and node[1] == "node task state-tolerated"
        assert "<title>work: 9 of 10 succeeded, 1 failure tolerated (9 success, 1 failed)</title>" in html
        beyond = re.search(r'<g id="node-per_item.first" class="([^"]*)"', html)
        assert beyond and beyond[1] == "node task state-failed"
