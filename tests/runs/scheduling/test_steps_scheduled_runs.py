"""create_scheduled_dag_runs: runs of scheduled DAGs, with and without catchup, paused, capped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from runs.models import DagModel, DagRun, DagRunType
from runs.scheduling.dag_processing import process_dags_folder
from runs.scheduling.loop import create_scheduled_dag_runs
from tests import dag_sources
from tests.runs.factories import NONE, states, write_dag

pytestmark = pytest.mark.django_db


def daily(tmp_path: Path, *, catchup: bool = False, max_active_runs: int = 16) -> None:
    write_dag(tmp_path, dag_sources.daily(catchup=catchup, max_active_runs=max_active_runs))
    process_dags_folder(tmp_path)


def logical_dates(dag_id: str = "daily") -> list[datetime]:
    return list(DagRun.objects.filter(dag_id=dag_id).order_by("logical_date").values_list("logical_date", flat=True))


class CreateScheduledDagRunsTests:
    def test_it_creates_the_latest_due_run_of_a_dag_without_catchup(self, tmp_path: Path) -> None:
        daily(tmp_path)
        today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)

        assert create_scheduled_dag_runs()

        run = DagRun.objects.get(dag_id="daily")
        assert run.run_type == DagRunType.SCHEDULED
        assert run.logical_date == today - timedelta(days=1)
        assert (run.data_interval_start, run.data_interval_end) == (today - timedelta(days=1), today)
        assert run.run_id == f"scheduled__{(today - timedelta(days=1)).isoformat()}"
        assert states(run, "a") == {-1: NONE}
        assert DagModel.objects.get(dag_id="daily").next_dagrun == today

    def test_it_creates_nothing_before_the_next_interval_ends(self, tmp_path: Path) -> None:
        daily(tmp_path)
        create_scheduled_dag_runs()

        assert not create_scheduled_dag_runs()

        assert len(logical_dates()) == 1

    def test_it_creates_one_run_per_due_interval_with_catchup(self, tmp_path: Path) -> None:
        daily(tmp_path, catchup=True)
        now = datetime(2024, 1, 4, 6, tzinfo=UTC)

        while create_scheduled_dag_runs(now=now):
            pass

        assert logical_dates() == [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
        assert DagModel.objects.get(dag_id="daily").next_dagrun == datetime(2024, 1, 4, tzinfo=UTC)

    def test_it_waits_while_the_dag_has_max_active_runs(self, tmp_path: Path) -> None:
        daily(tmp_path, catchup=True, max_active_runs=1)
        now = datetime(2024, 1, 4, 6, tzinfo=UTC)
        create_scheduled_dag_runs(now=now)

        assert not create_scheduled_dag_runs(now=now)

        assert len(logical_dates()) == 1
        assert DagModel.objects.get(dag_id="daily").next_dagrun == datetime(2024, 1, 2, tzinfo=UTC)

    def test_it_creates_nothing_for_a_paused_dag(self, tmp_path: Path) -> None:
        daily(tmp_path)
        DagModel.objects.filter(dag_id="daily").update(is_paused=True)

        assert not create_scheduled_dag_runs()

        assert logical_dates() == []
