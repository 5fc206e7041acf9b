"""Finished runs keep a frozen per-task summary, so pages never aggregate their instances again."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.cli import run_dag_run_inline
from runs.models import DagRun, TaskInstance
from runs.services import clear_task_instances
from runs.web.queries import grid_cells, mapped_summary
from tests.runs.factories import make_run

MAPPED = """
@task
def add(x):
    return x + 1

@task
def total(values):
    return sum(values)

with DAG("summarised") as the_dag:
    total(add.expand(x=[1, 2, 3, 4]))
"""


@pytest.mark.django_db(transaction=True)
class StateSummaryTests:
    def test_it_freezes_the_counts_when_the_run_finishes_and_pages_read_them_without_aggregating(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(make_run(tmp_path, MAPPED, dag_id="summarised"))
        assert run.state == "success" and run.state_summary is not None
        with CaptureQueriesContext(connection) as queries:
            cells = grid_cells([run])
            summary = mapped_summary(run, "add")
        assert not [q for q in queries.captured_queries if "runs_taskinstance" in q["sql"]]
        assert cells[(run.pk, "add")].counts == {"success": 4}
        assert summary.counts == {"success": 4} and summary.first_start is not None and summary.total_duration is not None

    def test_it_drops_the_frozen_summary_when_the_run_is_reopened(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(make_run(tmp_path, MAPPED, dag_id="summarised"))
        clear_task_instances(dag_run=run, task_id="add", map_indexes=[2])
        run.refresh_from_db()
        assert run.state == "running" and run.state_summary is None
        assert grid_cells([run])[(run.pk, "add")].counts == {"success": 3, "none": 1}
        run = run_dag_run_inline(run)
        assert run.state_summary is not None
        assert grid_cells([run])[(run.pk, "add")].counts == {"success": 4}

    def test_it_fills_in_a_missing_summary_of_a_finished_run_once(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(make_run(tmp_path, MAPPED, dag_id="summarised"))
        DagRun.objects.filter(pk=run.pk).update(state_summary=None)
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=0).update(state="failed")
        run.refresh_from_db()
        assert grid_cells([run])[(run.pk, "add")].counts == {"success": 3, "failed": 1}
        run.refresh_from_db()
        assert run.state_summary is not None
