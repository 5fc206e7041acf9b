"""update_dag_run_state: a run succeeds or fails from its instances' states."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs.models import DagRun, DagRunState
from runs.scheduling.steps import update_dag_run_state
from tests.dag_sources import CHAIN
from tests.runs.factories import FAILED, SKIPPED, SUCCESS, UPSTREAM_FAILED, data, make_run, set_state

pytestmark = pytest.mark.django_db


class UpdateDagRunStateTests:
    def _running(self, tmp_path: Path, source: str = CHAIN, dag_id: str = "chain") -> DagRun:
        run = make_run(tmp_path, source, dag_id=dag_id)
        DagRun.objects.filter(pk=run.pk).update(state=DagRunState.RUNNING)
        run.refresh_from_db()
        return run

    def test_it_succeeds_a_run_when_every_instance_is_done(self, tmp_path: Path) -> None:
        run = self._running(tmp_path)
        set_state(run, "a", SUCCESS)
        set_state(run, "b", SKIPPED)

        assert update_dag_run_state(dag_run=run, data=data(run))

        run.refresh_from_db()
        assert run.state == DagRunState.SUCCESS
        assert run.end_date is not None

    def test_it_fails_a_run_whose_leaf_failed(self, tmp_path: Path) -> None:
        run = self._running(tmp_path)
        set_state(run, "a", FAILED)
        set_state(run, "b", UPSTREAM_FAILED)

        update_dag_run_state(dag_run=run, data=data(run))

        run.refresh_from_db()
        assert run.state == DagRunState.FAILED

    def test_it_succeeds_a_run_whose_failure_was_handled_downstream(self, tmp_path: Path) -> None:
        run = self._running(tmp_path, """
with DAG("handled") as the_dag:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="cleanup", trigger_rule="all_done")
""", "handled")
        set_state(run, "a", FAILED)
        set_state(run, "cleanup", SUCCESS)

        update_dag_run_state(dag_run=run, data=data(run))

        run.refresh_from_db()
        assert run.state == DagRunState.SUCCESS

    def test_it_leaves_a_run_with_unfinished_instances_running(self, tmp_path: Path) -> None:
        run = self._running(tmp_path)
        set_state(run, "a", FAILED)

        assert not update_dag_run_state(dag_run=run, data=data(run))

        run.refresh_from_db()
        assert run.state == DagRunState.RUNNING
