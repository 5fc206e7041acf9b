"""A paused DAG, as in Airflow: no scheduled run is created, and the scheduler passes over none of
its runs (runs/scheduling/steps.active_dag_run_ids; Airflow's get_running_dag_runs_to_examine
filters is_paused the same way). A try already running finishes on its worker; nothing new is
queued until the DAG is unpaused, when the run goes on where it stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs.models import DagModel, DagRun
from runs.scheduling.dag_processing import process_dags_folder
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.loop import Scheduler, create_scheduled_dag_runs
from runs.services import set_dag_paused
from tests import dag_sources
from tests.runs.factories import make_run, states, write_dag

pytestmark = pytest.mark.django_db

CHAIN = """
@task
def first():
    return 1

@task
def second(x):
    return x

with DAG("chain") as the_dag:
    second(first())
"""


class PausedDagTests:
    def test_it_creates_no_scheduled_run_while_paused_and_creates_it_once_unpaused(self, tmp_path: Path) -> None:
        write_dag(tmp_path, dag_sources.daily(catchup=False))
        process_dags_folder(tmp_path)
        assert set_dag_paused(dag_id="daily", is_paused=True)

        assert not create_scheduled_dag_runs()
        assert not DagRun.objects.exists()

        assert set_dag_paused(dag_id="daily", is_paused=False)
        assert create_scheduled_dag_runs()
        assert DagRun.objects.filter(dag_id="daily", run_type="scheduled").count() == 1

    def test_it_queues_nothing_new_in_a_running_run_while_paused(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")
        scheduler = Scheduler(executor=InlineExecutor())
        scheduler.run_once()
        assert states(run, "first") == {-1: "queued"}
        run.task_instances.filter(task_id="first").update(state="success")  # the try that was running ends
        set_dag_paused(dag_id="chain", is_paused=True)

        scheduler.run_once()
        scheduler.run_once()

        assert states(run, "second") == {-1: "none"}
        set_dag_paused(dag_id="chain", is_paused=False)
        scheduler.run_once()
        assert states(run, "second") == {-1: "queued"}

    def test_it_reports_whether_anything_changed(self, tmp_path: Path) -> None:
        make_run(tmp_path, CHAIN, dag_id="chain")
        assert set_dag_paused(dag_id="chain", is_paused=True)
        assert not set_dag_paused(dag_id="chain", is_paused=True)
        assert DagModel.objects.get(dag_id="chain").is_paused
