"""Tolerated failures, partial(max_failed_ratio=..., max_failed_count=...): what a mapped task's
(or mapped group's) downstream sees, one scheduler step at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs.models import DagRun, DagRunState, XCom
from runs.scheduling.steps import seen_by_downstream, update_dag_run_state
from tests.runs.factories import (
    FAILED,
    NONE,
    REMOVED,
    RUNNING,
    SCHEDULED,
    SKIPPED,
    SUCCESS,
    UP_FOR_RETRY,
    UPSTREAM_FAILED,
    data,
    expand,
    make_run,
    schedule,
    set_state,
    states,
)

pytestmark = pytest.mark.django_db

MAPPED = """
@task
def work(x):
    return x

@task
def total(values):
    return sum(values)

@task(trigger_rule="one_failed")
def alert():
    pass

with DAG("tolerant") as the_dag:
    results = work.partial(TOLERANCE).expand(x=list(range(10)))
    total(results)
    results >> alert()
"""

GROUP = """
@task
def first(x):
    return x

@task
def second(y):
    return y

@task
def after():
    pass

@task_group
def per_item(x):
    return second(first(x))

with DAG("tolerant_group") as the_dag:
    per_item.partial(TOLERANCE).expand(x=list(range(10))) >> after()
"""


def _mapped(tmp_path: Path, tolerance: str = "max_failed_count=2") -> DagRun:
    run = make_run(tmp_path, MAPPED.replace("TOLERANCE", tolerance), dag_id="tolerant")
    assert expand(run, "work") == 10
    DagRun.objects.filter(pk=run.pk).update(state=DagRunState.RUNNING)
    run.refresh_from_db()
    return run


def _finish(run: DagRun, task_id: str, failed: list[int], state: str = FAILED) -> None:
    set_state(run, task_id, SUCCESS)
    for i in failed:
        set_state(run, task_id, state, map_index=i)


class ToleratedMappedTaskTests:
    def test_it_runs_the_downstream_when_failures_are_within_the_count(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path)
        _finish(run, "work", failed=[3, 7])
        schedule(run)
        assert states(run, "total") == {-1: SCHEDULED}
        assert states(run, "alert") == {-1: SKIPPED}

    def test_it_applies_the_trigger_rules_beyond_the_count(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path)
        _finish(run, "work", failed=[1, 3, 7])
        schedule(run)
        assert states(run, "total") == {-1: UPSTREAM_FAILED}
        assert states(run, "alert") == {-1: SCHEDULED}

    def test_it_counts_upstream_failed_instances_as_failures(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path)
        _finish(run, "work", failed=[1, 3, 7], state=UPSTREAM_FAILED)
        schedule(run)
        assert states(run, "total") == {-1: UPSTREAM_FAILED}

    def test_it_makes_the_downstream_wait_while_an_index_is_unfinished(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path)
        _finish(run, "work", failed=[3])
        set_state(run, "work", RUNNING, map_index=9)
        schedule(run)
        # Without the tolerance, all_success would be upstream_failed already.
        assert states(run, "total") == {-1: NONE}
        assert states(run, "alert") == {-1: NONE}

    def test_it_waits_for_a_retry_before_judging(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path)
        _finish(run, "work", failed=[1, 3])
        set_state(run, "work", UP_FOR_RETRY, map_index=7)
        schedule(run)
        assert states(run, "total") == {-1: NONE}

    def test_it_judges_the_ratio_over_the_instances_not_removed(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path, "max_failed_ratio=0.25")
        _finish(run, "work", failed=[0, 1])
        set_state(run, "work", REMOVED, map_index=8)
        set_state(run, "work", REMOVED, map_index=9)
        schedule(run)  # 2 of 8: within 25 %
        assert states(run, "total") == {-1: SCHEDULED}

    def test_it_fails_beyond_the_ratio(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path, "max_failed_ratio=0.25")
        _finish(run, "work", failed=[0, 1, 2])
        schedule(run)  # 3 of 10
        assert states(run, "total") == {-1: UPSTREAM_FAILED}

    def test_it_needs_both_bounds_when_both_are_given(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path, "max_failed_ratio=0.5, max_failed_count=1")
        _finish(run, "work", failed=[0, 1])
        schedule(run)
        assert states(run, "total") == {-1: UPSTREAM_FAILED}

    def test_it_leaves_a_task_without_failures_as_it_is(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path)
        _finish(run, "work", failed=[])
        counts = {"work": {SUCCESS: 10}}
        assert seen_by_downstream(dag_run=run, data=data(run), counts=counts)["work"] is counts["work"]

    def test_it_shows_tolerated_failures_as_successes_to_the_downstream(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path)
        _finish(run, "work", failed=[3, 7])
        seen = seen_by_downstream(dag_run=run, data=data(run), counts={"work": {SUCCESS: 8, FAILED: 2}})
        assert seen == {"work": {SUCCESS: 10}}

    def test_it_never_tolerates_a_placeholder_that_could_not_expand(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, MAPPED.replace("TOLERANCE", "max_failed_ratio=1"), dag_id="tolerant")
        set_state(run, "work", FAILED, map_index=-1)
        schedule(run)
        assert states(run, "total") == {-1: UPSTREAM_FAILED}

    def test_it_expands_a_mapped_downstream_over_the_successful_results(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def work(x):
    return x

@task
def again(y):
    return y

with DAG("tolerant_chain") as the_dag:
    again.expand(y=work.partial(max_failed_count=1).expand(x=[1, 2, 3]))
""", dag_id="tolerant_chain")
        assert expand(run, "work") == 3
        _finish(run, "work", failed=[1])
        # Results of the two successes only (a failed instance pushes none).
        for i in (0, 2):
            XCom.objects.create(dag_run=run, task_id="work", map_index=i, key="return_value", value=i)
        assert expand(run, "again") == 2


class ToleratedRunStateTests:
    def test_it_succeeds_a_run_whose_leaf_failures_are_tolerated(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def work(x):
    return x

with DAG("tolerant_leaf") as the_dag:
    work.partial(max_failed_count=1).expand(x=[1, 2, 3])
""", dag_id="tolerant_leaf")
        expand(run, "work")
        DagRun.objects.filter(pk=run.pk).update(state=DagRunState.RUNNING)
        _finish(run, "work", failed=[2])
        assert update_dag_run_state(dag_run=run, data=data(run))
        run.refresh_from_db()
        assert run.state == DagRunState.SUCCESS

    def test_it_succeeds_a_run_whose_downstream_ran_over_tolerated_failures(self, tmp_path: Path) -> None:
        run = _mapped(tmp_path)
        _finish(run, "work", failed=[3])
        set_state(run, "total", SUCCESS)
        set_state(run, "alert", SKIPPED)
        update_dag_run_state(dag_run=run, data=data(run))
        run.refresh_from_db()
        assert run.state == DagRunState.SUCCESS

    def test_it_fails_a_run_whose_leaf_failed_beyond_the_tolerance(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def work(x):
    return x

with DAG("tolerant_leaf") as the_dag:
    work.partial(max_failed_count=1).expand(x=[1, 2, 3])
""", dag_id="tolerant_leaf")
        expand(run, "work")
        DagRun.objects.filter(pk=run.pk).update(state=DagRunState.RUNNING)
        _finish(run, "work", failed=[0, 2])
        update_dag_run_state(dag_run=run, data=data(run))
        run.refresh_from_db()
        assert run.state == DagRunState.FAILED


def _group(tmp_path: Path, tolerance: str = "max_failed_count=2") -> DagRun:
    run = make_run(tmp_path, GROUP.replace("TOLERANCE", tolerance), dag_id="tolerant_group")
    for task_id in ("per_item.first", "per_item.second"):
        assert expand(run, task_id) == 10
    DagRun.objects.filter(pk=run.pk).update(state=DagRunState.RUNNING)
    run.refresh_from_db()
    return run


class ToleratedMappedGroupTests:
    def test_it_counts_a_group_index_once_whichever_of_its_tasks_failed(self, tmp_path: Path) -> None:
        run = _group(tmp_path)
        _finish(run, "per_item.first", failed=[1, 4])
        _finish(run, "per_item.second", failed=[])
        set_state(run, "per_item.second", UPSTREAM_FAILED, map_index=1)
        set_state(run, "per_item.second", UPSTREAM_FAILED, map_index=4)
        schedule(run)  # indexes 1 and 4 failed: 2 group indexes, within the count
        assert states(run, "after") == {-1: SCHEDULED}

    def test_it_applies_the_trigger_rule_beyond_the_count_of_group_indexes(self, tmp_path: Path) -> None:
        run = _group(tmp_path)
        _finish(run, "per_item.first", failed=[1])
        _finish(run, "per_item.second", failed=[4, 6])
        schedule(run)
        assert states(run, "after") == {-1: UPSTREAM_FAILED}

    def test_it_keeps_failures_inside_the_group_for_the_same_index(self, tmp_path: Path) -> None:
        run = _group(tmp_path)
        _finish(run, "per_item.first", failed=[1])
        set_state(run, "per_item.second", NONE)
        schedule(run)
        # Index 1 of the second task still sees index 1 of the first one failed.
        assert states(run, "per_item.second")[1] == UPSTREAM_FAILED
        assert states(run, "per_item.second")[0] == SCHEDULED

    def test_it_makes_the_group_downstream_wait_for_every_task_of_the_group(self, tmp_path: Path) -> None:
        run = _group(tmp_path)
        _finish(run, "per_item.first", failed=[1])
        _finish(run, "per_item.second", failed=[1], state=UPSTREAM_FAILED)
        set_state(run, "per_item.first", RUNNING, map_index=5)
        set_state(run, "per_item.second", NONE, map_index=5)
        schedule(run)
        assert states(run, "after") == {-1: NONE}

    def test_it_succeeds_the_run_when_the_group_failures_are_tolerated(self, tmp_path: Path) -> None:
        run = _group(tmp_path)
        _finish(run, "per_item.first", failed=[1])
        _finish(run, "per_item.second", failed=[1], state=UPSTREAM_FAILED)
        set_state(run, "after", SUCCESS)
        update_dag_run_state(dag_run=run, data=data(run))
        run.refresh_from_db()
        assert run.state == DagRunState.SUCCESS
