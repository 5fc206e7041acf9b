"""Scheduler steps, one at a time, against runs of real (parsed and serialized) DAG files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from runs.logs import read_log
from runs.models import DagModel, DagRun, DagRunState, DagRunType, TaskInstance, TaskMap, Variable
from runs.resolver import DbResolver
from runs.scheduling.dag_processing import process_dags_folder
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.loop import create_scheduled_dag_runs
from runs.scheduling.steps import (
    expand_mapped_task,
    queue_task_instances,
    schedule_dag_run,
    schedule_task_instances,
    update_dag_run_state,
)
from tests.runs.factories import data, make_run, set_state, states, ti, write_dag

pytestmark = pytest.mark.django_db

NONE, SCHEDULED, QUEUED, RUNNING, SUCCESS, FAILED = "none", "scheduled", "queued", "running", "success", "failed"
SKIPPED, UPSTREAM_FAILED, REMOVED, UP_FOR_RETRY = "skipped", "upstream_failed", "removed", "up_for_retry"

LITERAL = """
@task
def add(x):
    return x + 1

with DAG("literal") as the_dag:
    add.expand(x=[1, 2, 3])
"""

FROM_UPSTREAM = """
@task
def make():
    return [1, 2, 3]

@task
def add(x):
    return x + 1

with DAG("from_upstream") as the_dag:
    add.expand(x=make())
"""


def expand(run: DagRun, task_id: str) -> int:
    return expand_mapped_task(dag_run=run, data=data(run), task_id=task_id)


def schedule(run: DagRun) -> bool:
    return schedule_task_instances(dag_run=run, data=data(run))


def record_length(run: DagRun, task_id: str, length: int) -> None:
    """What a worker leaves behind when a task that feeds a mapped task succeeds."""
    TaskMap.objects.update_or_create(dag_run=run, task_id=task_id, map_index=-1, defaults={"length": length})
    set_state(run, task_id, SUCCESS, map_index=-1)


def placeholder_log(run: DagRun, task_id: str) -> str:
    placeholder = ti(run, task_id)
    return read_log(placeholder.pk, placeholder.try_number)[0]


class ExpandMappedTaskTests:
    def test_it_replaces_the_placeholder_with_one_instance_per_item(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, LITERAL, dag_id="literal")
        assert states(run, "add") == {-1: NONE}

        assert expand(run, "add") == 3

        # Nothing upstream to wait for: ready to queue at once, not written twice.
        assert states(run, "add") == {0: SCHEDULED, 1: SCHEDULED, 2: SCHEDULED}

    def test_it_leaves_new_instances_to_the_trigger_rule_while_another_upstream_runs(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def make():
    return [1, 2]

@task
def other():
    return 1

@task
def add(x):
    return x + 1

with DAG("waits_other") as the_dag:
    other() >> add.expand(x=make())
""", dag_id="waits_other")
        record_length(run, "make", 2)

        assert expand(run, "add") == 2
        assert states(run, "add") == {0: NONE, 1: NONE}

        set_state(run, "other", SUCCESS)
        assert schedule(run)
        assert states(run, "add") == {0: SCHEDULED, 1: SCHEDULED}

    def test_it_does_nothing_the_second_time(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, LITERAL, dag_id="literal")
        expand(run, "add")

        assert expand(run, "add") == 0

        assert TaskInstance.objects.filter(dag_run=run, task_id="add").count() == 3

    def test_it_waits_for_the_upstream_length_then_expands(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")

        assert expand(run, "add") == 0
        assert states(run, "add") == {-1: NONE}

        record_length(run, "make", 4)
        assert expand(run, "add") == 4
        assert states(run, "add") == {0: SCHEDULED, 1: SCHEDULED, 2: SCHEDULED, 3: SCHEDULED}

    def test_it_fails_when_the_upstream_succeeded_without_a_length(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        set_state(run, "make", SUCCESS)

        assert expand(run, "add") == 0

        assert states(run, "add") == {-1: FAILED}
        assert "recorded no length" in placeholder_log(run, "add")

    def test_it_skips_an_empty_expansion_and_downstream_follows_trigger_rules(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM + """
    after = EmptyOperator(task_id="after")
    after_none_failed = EmptyOperator(task_id="after_none_failed", trigger_rule="none_failed")
    after_all_done = EmptyOperator(task_id="after_all_done", trigger_rule="all_done")
    the_dag.get_task("add") >> [after, after_none_failed, after_all_done]
""", dag_id="from_upstream")
        record_length(run, "make", 0)

        assert expand(run, "add") == 0
        run.refresh_from_db()
        assert states(run, "add") == {-1: SKIPPED}

        schedule(run)
        assert states(run, "after") == {-1: SKIPPED}
        assert states(run, "after_none_failed") == {-1: SCHEDULED}
        assert states(run, "after_all_done") == {-1: SCHEDULED}

    @override_settings(MAX_MAP_LENGTH=3)
    def test_it_fails_the_placeholder_over_the_length_limit(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        record_length(run, "make", 4)

        assert expand(run, "add") == 0

        assert states(run, "add") == {-1: FAILED}
        assert ti(run, "add").try_number == 1
        log = placeholder_log(run, "add")
        assert "4 items" in log
        assert "limit of 3" in log

    @override_settings(MAX_MAP_LENGTH=3)
    def test_it_allows_more_with_a_per_task_max_map_length(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM.replace("add.expand", "add.partial(max_map_length=5).expand"), dag_id="from_upstream")
        record_length(run, "make", 5)

        assert expand(run, "add") == 5

        assert len(states(run, "add")) == 5

    def test_it_creates_missing_indexes_and_removes_extra_ones_on_reexpansion(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        record_length(run, "make", 3)
        expand(run, "add")
        set_state(run, "add", SUCCESS)

        # As after a clear of `add`: the placeholder is back and `make` now returns 5 items.
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 5)
        assert expand(run, "add") == 2
        assert states(run, "add") == {0: SUCCESS, 1: SUCCESS, 2: SUCCESS, 3: SCHEDULED, 4: SCHEDULED}

        # Cleared again, and now 2 items.
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 2)
        expand(run, "add")
        assert states(run, "add") == {0: SUCCESS, 1: SUCCESS, 2: REMOVED, 3: REMOVED, 4: REMOVED}

    def test_it_restores_a_removed_index_when_the_input_grows_again(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        record_length(run, "make", 3)
        expand(run, "add")
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 1)
        expand(run, "add")
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 3)

        expand(run, "add")

        assert states(run, "add") == {0: SCHEDULED, 1: SCHEDULED, 2: SCHEDULED}

    def test_it_removes_every_index_when_a_reexpansion_is_empty(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        record_length(run, "make", 2)
        expand(run, "add")
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 0)

        expand(run, "add")

        assert states(run, "add") == {-1: SKIPPED, 0: REMOVED, 1: REMOVED}

    def test_it_expands_a_param_ref_over_the_run_conf_first(self, tmp_path: Path) -> None:
        source = """
@task
def show(v):
    return v

with DAG("params", params={"files": ["a", "b"]}) as the_dag:
    show.expand(v=ParamRef("files"))
"""
        with_conf = make_run(tmp_path, source, dag_id="params", conf={"files": ["x", "y", "z"]})
        without_conf = make_run(tmp_path, source, dag_id="params")

        assert expand(with_conf, "show") == 3
        assert expand(without_conf, "show") == 2

    def test_it_fails_a_param_ref_that_names_nothing(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def show(v):
    return v

with DAG("params") as the_dag:
    show.expand(v=ParamRef("files"))
""", dag_id="params")

        assert expand(run, "show") == 0

        assert states(run, "show") == {-1: FAILED}
        assert "no 'files'" in placeholder_log(run, "show")

    def test_it_expands_a_variable_ref_over_a_snapshot(self, tmp_path: Path) -> None:
        Variable.objects.create(key="regions", val=["eu", "us"])
        run = make_run(tmp_path, """
@task
def show(v):
    return v

with DAG("variables") as the_dag:
    show.expand(v=VariableRef("regions"))
""", dag_id="variables")

        assert expand(run, "show") == 2
        Variable.objects.filter(key="regions").update(val=["a", "b", "c"])

        # What a worker resolves for its index: the value the expansion saw.
        assert DbResolver(run, data(run)).ref_value("variable", "regions") == ["eu", "us"]

    def test_it_fails_a_variable_ref_to_a_missing_variable(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def show(v):
    return v

with DAG("variables") as the_dag:
    show.expand(v=VariableRef("nope"))
""", dag_id="variables")

        assert expand(run, "show") == 0

        assert states(run, "show") == {-1: FAILED}
        assert "no Variable named 'nope' exists" in placeholder_log(run, "show")


CHAIN = """
with DAG("chain") as the_dag:
    EmptyOperator(task_id="a", retries=2) >> EmptyOperator(task_id="b")
"""

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


PARALLEL = """
with DAG("parallel") as the_dag:
    EmptyOperator(task_id="a")
    EmptyOperator(task_id="b")
    EmptyOperator(task_id="c") >> EmptyOperator(task_id="d")
"""

CAPPED = """
@task
def add(x):
    return x + 1

with DAG("capped") as the_dag:
    add.partial(max_active_tis_per_dagrun=2).expand(x=[1, 2, 3, 4, 5])
"""


class QueueTaskInstancesTests:
    def test_it_queues_scheduled_instances_and_hands_exactly_those_to_the_executor(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, PARALLEL, dag_id="parallel")
        schedule(run)
        executor = InlineExecutor()

        assert queue_task_instances(dag_run=run, data=data(run), executor=executor)

        queued = TaskInstance.objects.filter(dag_run=run, state=QUEUED)
        assert sorted(executor.pending) == sorted(queued.values_list("pk", flat=True))
        assert sorted(queued.values_list("task_id", flat=True)) == ["a", "b", "c"]
        assert set(queued.values_list("try_number", flat=True)) == {1}
        assert all(t.queued_at is not None for t in queued)
        assert states(run, "d") == {-1: NONE}

    def test_it_queues_nothing_twice(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, PARALLEL, dag_id="parallel")
        schedule(run)
        queue_task_instances(dag_run=run, data=data(run), executor=InlineExecutor())
        executor = InlineExecutor()

        assert not queue_task_instances(dag_run=run, data=data(run), executor=executor)

        assert executor.pending == []

    def test_it_increments_the_try_number_of_a_retry(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CHAIN, dag_id="chain")
        TaskInstance.objects.filter(dag_run=run, task_id="a").update(state=SCHEDULED, try_number=1)

        queue_task_instances(dag_run=run, data=data(run), executor=InlineExecutor())

        assert ti(run, "a").try_number == 2

    def test_it_keeps_within_max_active_tis_per_dagrun(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CAPPED, dag_id="capped")
        expand(run, "add")
        schedule(run)
        executor = InlineExecutor()

        queue_task_instances(dag_run=run, data=data(run), executor=executor)
        assert len(executor.pending) == 2
        assert not queue_task_instances(dag_run=run, data=data(run), executor=executor)
        assert len(executor.pending) == 2

        TaskInstance.objects.filter(pk=executor.pending[0]).update(state=SUCCESS)
        queue_task_instances(dag_run=run, data=data(run), executor=executor)
        assert len(executor.pending) == 3
        assert TaskInstance.objects.filter(dag_run=run, state=QUEUED).count() == 2


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


DAILY = """
with DAG("daily", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=CATCHUP, max_active_runs=16) as the_dag:
    EmptyOperator(task_id="a")
"""


def daily(tmp_path: Path, *, catchup: bool = False, max_active_runs: int = 16) -> None:
    write_dag(tmp_path, DAILY.replace("CATCHUP", str(catchup)).replace("16", str(max_active_runs)))
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
