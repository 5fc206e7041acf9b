"""schedule_task_instances: trigger rules over upstream states, mapped task groups, retries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from runs.models import TaskInstance
from tests.dag_sources import CHAIN
from tests.runs.factories import (
    FAILED,
    NONE,
    RUNNING,
    SCHEDULED,
    SUCCESS,
    UP_FOR_RETRY,
    UPSTREAM_FAILED,
    expand,
    make_run,
    schedule,
    set_state,
    states,
    ti,
)

pytestmark = pytest.mark.django_db

GROUP = """
@task
def first(n):
    return n

@task
def second(n):
    return n

@task_group
def per_number(n):
    second(first(n))

with DAG("group") as the_dag:
    per_number.expand(n=[1, 2, 3])
"""


class ScheduleTaskInstancesTests:
    def test_it_schedules_a_task_once_its_upstream_succeeded(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")

        assert schedule(run)
        assert states(run, "a") == {-1: SCHEDULED}
        assert states(run, "b") == {-1: NONE}

        set_state(run, "a", SUCCESS)
        assert schedule(run)
        assert states(run, "b") == {-1: SCHEDULED}

    def test_it_reports_no_work_while_waiting(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")
        set_state(run, "a", RUNNING)

        assert not schedule(run)

        assert states(run, "b") == {-1: NONE}

    def test_it_marks_downstream_of_a_failure_upstream_failed(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")
        set_state(run, "a", FAILED)

        schedule(run)

        b = ti(run, "b")
        assert b.state == UPSTREAM_FAILED
        assert b.end_date is not None

    def test_it_schedules_a_mapped_task_group_depth_first(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, GROUP, dag_id="group")
        expand(run, "per_number.first")
        expand(run, "per_number.second")
        set_state(run, "per_number.first", RUNNING, map_index=0)
        set_state(run, "per_number.first", SUCCESS, map_index=1)
        set_state(run, "per_number.first", RUNNING, map_index=2)

        schedule(run)

        assert states(run, "per_number.second") == {0: NONE, 1: SCHEDULED, 2: NONE}

    def test_it_fails_only_the_same_index_downstream_in_a_mapped_task_group(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, GROUP, dag_id="group")
        expand(run, "per_number.first")
        expand(run, "per_number.second")
        set_state(run, "per_number.first", SUCCESS)
        set_state(run, "per_number.first", FAILED, map_index=2)

        schedule(run)

        assert states(run, "per_number.second") == {0: SCHEDULED, 1: SCHEDULED, 2: UPSTREAM_FAILED}

    def test_it_releases_a_retry_that_is_due(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")
        TaskInstance.objects.filter(dag_run=run, task_id="a").update(
            state=UP_FOR_RETRY, try_number=1, next_retry_at=timezone.now() - timedelta(seconds=1))

        assert schedule(run)

        assert states(run, "a") == {-1: SCHEDULED}

    def test_it_holds_a_retry_that_is_not_due(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")
        TaskInstance.objects.filter(dag_run=run, task_id="a").update(
            state=UP_FOR_RETRY, try_number=1, next_retry_at=timezone.now() + timedelta(minutes=5))

        schedule(run)

        assert states(run, "a") == {-1: UP_FOR_RETRY}
        assert states(run, "b") == {-1: NONE}
