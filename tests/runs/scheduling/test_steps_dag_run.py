"""schedule_dag_run: one pass over a run, from queued to its first instances queued."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs.models import DagRun, DagRunState
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.steps import schedule_dag_run
from tests.dag_sources import CHAIN, LITERAL
from tests.runs.factories import QUEUED, make_run, states, ti

pytestmark = pytest.mark.django_db


class ScheduleDagRunTests:
    def test_it_starts_a_queued_run_and_queues_its_roots_in_one_pass(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")
        executor = InlineExecutor()

        assert schedule_dag_run(dag_run_id=run.pk, executor=executor)

        run.refresh_from_db()
        assert run.state == DagRunState.RUNNING
        assert run.start_date is not None
        assert executor.pending == [ti(run, "a").pk]

    def test_it_expands_a_literal_mapped_task_and_queues_its_instances(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, LITERAL, dag_id="literal")
        executor = InlineExecutor()

        schedule_dag_run(dag_run_id=run.pk, executor=executor)

        assert states(run, "add") == {0: QUEUED, 1: QUEUED, 2: QUEUED}
        assert len(executor.pending) == 3

    def test_it_keeps_a_run_queued_beyond_max_active_runs(self, tmp_path: Path) -> None:
        first = make_run(tmp_path, CHAIN.replace('DAG("chain")', 'DAG("chain", max_active_runs=1)'), dag_id="chain")
        second = make_run(tmp_path, CHAIN.replace('DAG("chain")', 'DAG("chain", max_active_runs=1)'), dag_id="chain")
        schedule_dag_run(dag_run_id=first.pk, executor=InlineExecutor())
        executor = InlineExecutor()

        assert not schedule_dag_run(dag_run_id=second.pk, executor=executor)

        second.refresh_from_db()
        assert second.state == DagRunState.QUEUED
        assert executor.pending == []

    def test_it_ignores_a_finished_run(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")
        DagRun.objects.filter(pk=run.pk).update(state=DagRunState.SUCCESS)

        assert not schedule_dag_run(dag_run_id=run.pk, executor=InlineExecutor())
