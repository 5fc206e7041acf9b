"""Running task instances in-process, as a worker does: results, task maps, retries, logs, ownership.

transaction=True throughout: the log writer flushes from its own thread and connection, which
would not see the rows of a test transaction.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from runs.cli import run_dag_run_inline
from runs.execution.execute import execute_task_instance, execute_task_instances
from runs.logs import read_log
from runs.models import DagRun, DagRunState, TaskInstance, TaskInstanceLog, TaskInstanceTry, TaskMap, Variable, XCom
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.steps import schedule_dag_run
from tests.dag_sources import over_variable
from tests.runs.factories import make_run, states, ti

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loading a DAG file puts its folder on sys.path, as Airflow does; keep that out of other tests.
    monkeypatch.setattr(sys, "path", list(sys.path))


def step(run: DagRun) -> list[int]:
    """One scheduler pass; returns the ids it queued."""
    executor = InlineExecutor()
    schedule_dag_run(dag_run_id=run.pk, executor=executor)
    return executor.pending


def result(run: DagRun, task_id: str, map_index: int = -1) -> object:
    return XCom.objects.filter(dag_run=run, task_id=task_id, map_index=map_index, key="return_value").values_list("value", flat=True).first()


def log_of(run: DagRun, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
    return read_log(ti(run, task_id, map_index).pk, try_number)[0]


FEEDS = """
@task
def make():
    return RESULT

@task
def show(v):
    return v

with DAG("feeds") as the_dag:
    show.expand(v=make())
"""


def feeds(result: str) -> str:
    return FEEDS.replace("RESULT", result)


class ResultFeedingAMappedTaskTests:
    def test_it_fails_a_result_that_is_not_a_list_or_dict(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, feeds("5"), dag_id="feeds")
        [make_id] = step(run)

        assert execute_task_instance(make_id) == "failed"

        assert states(run, "make") == {-1: "failed"}
        assert "feeds a mapped task, so it must return a list or a dict, not 'int'" in log_of(run, "make")
        assert result(run, "make") is None
        assert not TaskMap.objects.filter(dag_run=run).exists()

    def test_it_fails_the_mapped_task_upstream_and_the_run(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, feeds("'not a list'"), dag_id="feeds")

        run = run_dag_run_inline(run, timeout=30)

        assert run.state == DagRunState.FAILED
        assert states(run, "show") == {-1: "upstream_failed"}

    @override_settings(MAX_MAP_LENGTH=3)
    def test_it_fails_a_result_longer_than_the_limit(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, feeds("[1, 2, 3, 4]"), dag_id="feeds")
        [make_id] = step(run)

        assert execute_task_instance(make_id) == "failed"

        assert "returned 4 items to map over, more than the limit of 3" in log_of(run, "make")

    @pytest.mark.parametrize(("returned", "keys", "items"), [
        pytest.param("['a', 'b', 'c']", None, ["a", "b", "c"], id="a_list_length_and_expands_over_it"),
        pytest.param("{'eu': 1, 'us': {'n': 2}}", ["eu", "us"], [["eu", 1], ["us", {"n": 2}]],
                     id="dict_keys_and_maps_over_key_value_pairs"),
    ])
    def test_it_records(self, tmp_path: Path, returned: str, keys: list[str] | None, items: list[object]) -> None:
        run = make_run(tmp_path, feeds(returned), dag_id="feeds")

        run = run_dag_run_inline(run, timeout=30)

        assert run.state == DagRunState.SUCCESS
        task_map = TaskMap.objects.get(dag_run=run, task_id="make")
        assert (task_map.length, task_map.keys) == (len(items), keys)
        assert [result(run, "show", i) for i in range(len(items))] == items


class ItemIdentityTests:
    def test_it_records_the_identities_with_the_task_map_and_names_the_item_in_each_try_log(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def make():
    return [{'id': 'a', 'at': 1}, {'id': 'b', 'at': 2}]

@task
def show(v):
    return v

with DAG("feeds") as the_dag:
    made = make()
    show.expand(v=made)
    show.partial(map_key=lambda o: o['id']).expand(v=made)
""", dag_id="feeds")

        run = run_dag_run_inline(run, timeout=30)

        assert run.state == DagRunState.SUCCESS
        identities = TaskMap.objects.get(dag_run=run, task_id="make").identities
        assert identities["show__1"] == ["a", "b"] and len(identities[""]) == 2
        assert ti(run, "show__1", 1).item_identity == "b"
        assert "Item identity: b" in log_of(run, "show__1", 1)
        assert f"Item identity: {identities[''][0]}" in log_of(run, "show", 0)

    def test_it_fails_the_upstream_when_a_map_key_returns_a_bad_key(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, feeds("[1, 2]").replace("show.expand(", "show.partial(map_key=lambda v: [v]).expand("), dag_id="feeds")
        [make_id] = step(run)

        assert execute_task_instance(make_id) == "failed"

        assert "show.partial(map_key=...) returned 'list' for item 0; it must return a str or an int" in log_of(run, "make")
        assert not TaskMap.objects.filter(dag_run=run).exists()


RETURNS = """
@task
def x():
    return RESULT

@task
def after(v):
    return v

with DAG("returns") as the_dag:
    after(x())
"""


class UnstorableResultTests:
    """A result PostgreSQL cannot store as JSON fails the try with a sentence naming the task, not a database error."""

    @pytest.mark.parametrize(("returned", "problem"), [
        ("float('nan')", "contains NaN, which JSON cannot store"),
        ("{'a': [1.0, float('-inf')]}", "contains Infinity, which JSON cannot store"),
        ("'a\\x00b'", "contains a NUL character (\\u0000), which PostgreSQL cannot store"),
        ("{'k\\x00': 1}", "contains a NUL character"),
        ("'\\ud800'", "contains a lone surrogate '\\ud800', which is not valid Unicode text"),
        ("__import__('functools').reduce(lambda acc, _: [acc], range(600), [])", "is nested more than 500 levels deep"),
    ])
    def test_it_fails_naming_the_task_and_the_problem(self, tmp_path: Path, returned: str, problem: str) -> None:
        run = make_run(tmp_path, RETURNS.replace("RESULT", returned), dag_id="returns")
        [x_id] = step(run)

        assert execute_task_instance(x_id) == "failed"

        log = log_of(run, "x")
        assert f"Could not store the result: the return value of task 'x' {problem}" in log, log
        assert "psycopg" not in log and "DataError" not in log
        assert result(run, "x") is None

    def test_it_fails_a_result_that_feeds_a_mapping_the_same_way(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, feeds("[1, float('nan')]"), dag_id="feeds")
        [make_id] = step(run)

        assert execute_task_instance(make_id) == "failed"

        assert "the return value of task 'make' contains NaN, which JSON cannot store" in log_of(run, "make")
        assert not TaskMap.objects.filter(dag_run=run).exists()


class ReduceTests:
    def test_it_hands_a_lazy_sequence_of_mapped_results_in_map_index_order(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def add(x):
    return x + 10

@task
def total(values):
    return {"type": type(values).__name__, "len": len(values), "first": values[0], "last": values[-1],
            "items": list(values), "sum": sum(values)}

with DAG("reduce") as the_dag:
    total(add.expand(x=[3, 1, 2]))
""", dag_id="reduce")

        run = run_dag_run_inline(run, timeout=30)

        assert run.state == DagRunState.SUCCESS
        assert result(run, "total") == {"type": "LazyXComSequence", "len": 3, "first": 13, "last": 12,
                                        "items": [13, 11, 12], "sum": 36}


RAISES = """
@task(retries=1, retry_delay=timedelta(0))
def flaky():
    print("about to fail")
    raise ValueError("boom")

with DAG("raises") as the_dag:
    flaky()
"""


class RetryTests:
    def test_it_retries_a_failing_task_then_fails_it(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, RAISES, dag_id="raises")
        [ti_id] = step(run)

        assert execute_task_instance(ti_id) == "up_for_retry"
        first = TaskInstance.objects.get(pk=ti_id)
        assert (first.try_number, first.next_retry_at is not None) == (1, True)

        assert step(run) == [ti_id]
        assert TaskInstance.objects.get(pk=ti_id).try_number == 2
        assert execute_task_instance(ti_id) == "failed"
        step(run)

        run.refresh_from_db()
        assert run.state == DagRunState.FAILED

    def test_it_keeps_a_log_per_try_with_the_traceback_and_printed_output(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, RAISES, dag_id="raises")

        run_dag_run_inline(run, timeout=30)

        pk = ti(run, "flaky").pk
        assert set(TaskInstanceLog.objects.filter(task_instance_id=pk).values_list("try_number", flat=True)) == {1, 2}
        first, second = read_log(pk, 1)[0], read_log(pk, 2)[0]
        assert "Starting attempt 1 of 2" in first
        assert "about to fail" in first
        assert "Traceback (most recent call last)" in first
        assert "ValueError: boom" in first
        assert "UP_FOR_RETRY" in first
        assert "Starting attempt 2 of 2" in second
        assert "Marking task as FAILED" in second

    def test_it_keeps_the_try_that_ended_up_for_retry_before_the_next_one_starts(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, RAISES, dag_id="raises")
        [ti_id] = step(run)
        execute_task_instance(ti_id)
        step(run)
        execute_task_instance(ti_id)

        kept = TaskInstanceTry.objects.get(task_instance_id=ti_id)
        current = TaskInstance.objects.get(pk=ti_id)
        assert (kept.try_number, kept.state, current.try_number, current.state) == (1, "up_for_retry", 2, "failed")
        assert kept.start_date is not None and kept.start_date < current.start_date

    def test_it_fails_at_once_on_airflow_fail_exception(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, RAISES.replace('raise ValueError("boom")', 'raise AirflowFailException("no point")'), dag_id="raises")
        [ti_id] = step(run)

        assert execute_task_instance(ti_id) == "failed"


class OwnershipTests:
    SOURCE = """
import os

@task
def once():
    with open(os.environ["RUNS_MARKER"], "a") as f:
        f.write("ran\\n")
    return "done"

with DAG("once") as the_dag:
    once()
"""

    def test_it_does_not_run_an_instance_twice_for_one_try(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        marker = tmp_path / "marker"
        monkeypatch.setenv("RUNS_MARKER", str(marker))
        run = make_run(tmp_path, self.SOURCE, dag_id="once")
        [ti_id] = step(run)

        assert execute_task_instance(ti_id) == "success"
        assert execute_task_instance(ti_id) is None

        assert marker.read_text() == "ran\n"

    def test_it_does_not_run_an_instance_another_worker_took(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        marker = tmp_path / "marker"
        monkeypatch.setenv("RUNS_MARKER", str(marker))
        run = make_run(tmp_path, self.SOURCE, dag_id="once")
        [ti_id] = step(run)
        TaskInstance.objects.filter(pk=ti_id).update(state="running")

        assert execute_task_instance(ti_id) is None

        assert not marker.exists()

    def test_it_discards_the_result_of_a_try_cleared_while_running(self, tmp_path: Path) -> None:
        # The task itself plays the user who clears it and the scheduler that queues it again.
        run = make_run(tmp_path, """
from dagsapp.sdk import get_current_context

@task
def cleared():
    from runs.models import TaskInstance  # the worker has Django set up; the parser does not

    ti = get_current_context()["ti"]
    if ti.try_number == 1:
        TaskInstance.objects.filter(dag_run__run_id=ti.run_id, task_id=ti.task_id).update(state="queued", try_number=2)
    return f"try {ti.try_number}"

with DAG("cleared") as the_dag:
    cleared()
""", dag_id="cleared")
        [ti_id] = step(run)

        assert execute_task_instance(ti_id) == "discarded"

        again = TaskInstance.objects.get(pk=ti_id)
        assert (again.state, again.try_number) == ("queued", 2)
        assert result(run, "cleared") is None

        assert execute_task_instance(ti_id) == "success"
        assert result(run, "cleared") == "try 2"


class VariableSnapshotTests:
    def test_it_gives_workers_the_variable_value_seen_at_expansion(self, tmp_path: Path) -> None:
        Variable.objects.create(key="regions", val=["eu", "us"])
        run = make_run(tmp_path, over_variable("regions"), dag_id="variables")
        queued = step(run)
        Variable.objects.filter(key="regions").update(val=["ap", "sa", "af"])

        for ti_id in queued:
            execute_task_instance(ti_id)

        assert [result(run, "show", i) for i in range(2)] == ["eu", "us"]
        assert states(run, "show") == {0: "success", 1: "success"}


class MappedTaskGroupTests:
    def test_it_runs_a_mapped_task_group_to_the_end(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def double(n):
    return n * 2

@task
def label(n):
    return f"n={n}"

@task
def collect(values):
    return list(values)

@task_group
def per_number(n):
    return label(double(n))

with DAG("group") as the_dag:
    collect(per_number.expand(n=[1, 2, 3]))
""", dag_id="group")

        run = run_dag_run_inline(run, timeout=30)

        assert run.state == DagRunState.SUCCESS
        assert result(run, "collect") == ["n=2", "n=4", "n=6"]


class SchedulerWakeUpTests:
    """A success wakes the scheduler only when the scheduler can act on it."""

    @pytest.fixture
    def listener(self):  # type: ignore[no-untyped-def]
        from runs.notify import SchedulerListener

        listener = SchedulerListener()
        yield listener
        listener.close()

    def run_with(self, tmp_path: Path, rule: str) -> tuple[DagRun, list[int]]:
        run = make_run(tmp_path, f"""
@task
def add(x):
    return x + 1

@task(trigger_rule="{rule}")
def total(values):
    return sum(values)

with DAG("wake") as the_dag:
    total(add.expand(x=[1, 2, 3]))
""", dag_id="wake")
        queued = step(run)  # expands add and queues its instances
        assert len(queued) == 3
        return run, queued

    def test_it_wakes_the_scheduler_only_once_no_sibling_waits_to_run(self, tmp_path: Path, listener) -> None:  # type: ignore[no-untyped-def]
        run, queued = self.run_with(tmp_path, "all_success")
        listener.wait(0.05)  # whatever the set-up sent

        woken = []
        for ti_id in queued:
            assert execute_task_instance(ti_id) == "success"
            woken.append(listener.wait(0.2, coalesce=0))

        assert woken == [False, False, True]
        assert step(run) and states(run, "total") == {-1: "queued"}

    def test_it_wakes_the_scheduler_on_each_success_a_downstream_may_start_on(self, tmp_path: Path, listener) -> None:  # type: ignore[no-untyped-def]
        _, queued = self.run_with(tmp_path, "one_success")
        listener.wait(0.05)

        woken = []
        for ti_id in queued:
            assert execute_task_instance(ti_id) == "success"
            woken.append(listener.wait(0.2, coalesce=0))

        assert woken == [True, True, True]


class WakesSchedulerOnEachSuccessTests:
    def data(self, **tasks: dict) -> dict:
        base = {"max_active_tis_per_dagrun": None, "downstream": [], "trigger_rule": "all_success", "same_index_upstream": []}
        return {"tasks": {name: {**base, **t} for name, t in tasks.items()}}

    def test_it_waits_for_the_last_success_when_downstream_needs_every_upstream(self) -> None:
        from runs.execution.execute import wakes_scheduler_on_each_success

        data = self.data(up={"downstream": ["down"]}, down={"trigger_rule": "none_failed"})
        assert wakes_scheduler_on_each_success(data, "up") is False

    def test_it_wakes_on_each_success_where_one_success_decides_or_a_slot_frees(self) -> None:
        from runs.execution.execute import wakes_scheduler_on_each_success

        assert wakes_scheduler_on_each_success(self.data(up={"downstream": ["d"]}, d={"trigger_rule": "one_success"}), "up")
        assert wakes_scheduler_on_each_success(self.data(up={"downstream": ["d"]}, d={"trigger_rule": "all_failed"}), "up")
        assert wakes_scheduler_on_each_success(self.data(up={"max_active_tis_per_dagrun": 2}), "up")

    def test_it_wakes_on_each_success_for_depth_first_mapped_groups(self) -> None:
        from runs.execution.execute import wakes_scheduler_on_each_success

        data = self.data(first={"downstream": ["second"]}, second={"same_index_upstream": ["first"]})
        assert wakes_scheduler_on_each_success(data, "first") is True


class BatchTests:
    """A batch from one message runs in groups: one statement commits a group and claims the next."""

    SOURCE = """
@task
def make():
    return [1, 2, 3, 4, 5, 6]

@task
def double(x):
    return 2 * x

with DAG("batch") as the_dag:
    double.expand(x=make())
"""

    def expanded(self, tmp_path: Path) -> tuple[DagRun, list[int]]:
        run = make_run(tmp_path, self.SOURCE, dag_id="batch")
        [make_id] = step(run)
        assert execute_task_instance(make_id) == "success"
        step(run)
        ids = list(TaskInstance.objects.filter(dag_run=run, task_id="double").order_by("map_index").values_list("pk", flat=True))
        assert states(run, "double") == dict.fromkeys(range(6), "queued")
        return run, ids

    @override_settings(EXECUTION_GROUP_BUDGET_MS=60_000)
    def test_it_claims_a_group_in_the_statement_that_commits_the_previous_group(self, tmp_path: Path) -> None:
        run, ids = self.expanded(tmp_path)

        with CaptureQueriesContext(connection) as queries:
            execute_task_instances(ids)

        sqls = [q["sql"] for q in queries.captured_queries]
        own_claims, group_commits = _claims_and_group_commits(sqls)
        assert len(own_claims) == 1  # the first instance, alone
        # Its commit claims the other five; their commit claims nothing more.
        assert len(group_commits) == 2
        assert states(run, "double") == dict.fromkeys(range(6), "success")
        assert [result(run, "double", i) for i in range(6)] == [2, 4, 6, 8, 10, 12]

    @override_settings(EXECUTION_GROUP_BUDGET_MS=60_000)
    def test_it_commits_a_group_in_as_many_statements_whatever_its_size(self, tmp_path: Path) -> None:
        run, ids = self.expanded(tmp_path)
        execute_task_instances(ids[:1])  # the run and its DAG are cached from here on, the connection set up

        with CaptureQueriesContext(connection) as two:
            execute_task_instances(ids[1:3])
        with CaptureQueriesContext(connection) as three:
            execute_task_instances(ids[3:6])

        # The prefetch (the ids, then the items), the group's claim (the first batch measured what
        # an instance costs) and the group's commit: a fixed count, whatever the size.
        assert len(three) == len(two) == 4
        assert states(run, "double") == dict.fromkeys(range(6), "success")

    @override_settings(EXECUTION_GROUP_BUDGET_MS=60_000)
    def test_it_starts_a_later_batch_of_the_same_task_with_a_whole_group(self, tmp_path: Path) -> None:
        run, ids = self.expanded(tmp_path)
        execute_task_instances(ids[:2])  # one alone, then one more: this process now knows the cost

        with CaptureQueriesContext(connection) as queries:
            execute_task_instances(ids[2:])

        sqls = [q["sql"] for q in queries.captured_queries]
        claims, group_commits = _claims_and_group_commits(sqls)
        # The four claimed in one statement, committed in one (which has nothing more to claim).
        assert (len(claims), len(group_commits)) == (1, 1)
        assert states(run, "double") == dict.fromkeys(range(6), "success")
        assert [result(run, "double", i) for i in range(6)] == [2, 4, 6, 8, 10, 12]
        # Claimed together, each still has its own start and end.
        rows = list(TaskInstance.objects.filter(pk__in=ids[2:]).order_by("map_index").values_list("start_date", "end_date"))
        assert len({start for start, _ in rows}) == 4 and all(start <= end for start, end in rows)

    @override_settings(EXECUTION_GROUP_BUDGET_MS=60_000)
    def test_it_starts_the_first_batch_of_another_run_with_one_instance_alone(self, tmp_path: Path) -> None:
        _, ids = self.expanded(tmp_path)
        execute_task_instances(ids)
        other, other_ids = self.expanded(tmp_path)

        with CaptureQueriesContext(connection) as queries:
            execute_task_instances(other_ids)

        claims, _ = _claims_and_group_commits([q["sql"] for q in queries.captured_queries])
        assert len(claims) == 1  # the first instance alone: nothing is known of this run's cost yet
        assert states(other, "double") == dict.fromkeys(range(6), "success")

    @override_settings(EXECUTION_GROUP_BUDGET_MS=0)
    def test_it_runs_a_later_batch_of_a_slow_task_one_instance_per_group_too(self, tmp_path: Path) -> None:
        run, ids = self.expanded(tmp_path)
        execute_task_instances(ids[:1])

        with CaptureQueriesContext(connection) as queries:
            execute_task_instances(ids[1:])

        sqls = [q["sql"] for q in queries.captured_queries]
        claims, group_commits = _claims_and_group_commits(sqls)
        assert (len(claims), len(group_commits)) == (1, 5)
        assert [result(run, "double", i) for i in range(6)] == [2, 4, 6, 8, 10, 12]

    @override_settings(EXECUTION_GROUP_BUDGET_MS=0)
    def test_it_runs_a_slow_task_one_instance_per_group(self, tmp_path: Path) -> None:
        run, ids = self.expanded(tmp_path)

        with CaptureQueriesContext(connection) as queries:
            execute_task_instances(ids)

        group_commits = [q for q in queries.captured_queries if "claimed AS (UPDATE runs_taskinstance" in q["sql"]]
        assert len(group_commits) == 6
        assert [result(run, "double", i) for i in range(6)] == [2, 4, 6, 8, 10, 12]

    def test_it_executes_one_instance_in_a_fixed_number_of_statements(self, tmp_path: Path, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
        run, ids = self.expanded(tmp_path)
        assert execute_task_instance(ids[0]) == "success"  # the run and its DAG are cached from here on

        # The claim, the upstream's result read for this index, the success commit (XCom, log, wake-up).
        with django_assert_num_queries(3):
            assert execute_task_instance(ids[1]) == "success"


NAMED_IN_CONTEXT = """
from dagsapp.sdk import get_current_context

@task(map_index_template="{{ my_name }}", retries=0)
def named(x):
    get_current_context()["my_name"] = f"item-{x}"
    if x == 3:
        raise ValueError("the name is set before this failure")
    return x

@task(map_index_template="{{ task.op_kwargs['x'] }}-{{ suffix | default('none') }}")
def plain(x):
    return x

with DAG("named_in_context") as the_dag:
    named.expand(x=[1, 2, 3])
    plain.expand(x=[7])
"""


class NameRenderedAfterTheTryTests:
    """Airflow renders map_index_template once the task has run, so a task can name its own instance."""

    def test_it_names_an_instance_from_a_value_the_task_put_in_its_context(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, NAMED_IN_CONTEXT, dag_id="named_in_context")
        run = run_dag_run_inline(run, timeout=60)

        names = dict(TaskInstance.objects.filter(dag_run=run, task_id="named").values_list("map_index", "rendered_map_index"))
        assert names == {0: "item-1", 1: "item-2", 2: "item-3"}
        assert states(run, "named") == {0: "success", 1: "success", 2: "failed"}
        assert "Could not render map_index_template" not in log_of(run, "named", 0)

    def test_it_keeps_names_that_only_read_inputs(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, NAMED_IN_CONTEXT, dag_id="named_in_context")
        run = run_dag_run_inline(run, timeout=60)

        assert ti(run, "plain", 0).rendered_map_index == "7-none"


BIG = """
@task
def big():
    return "x" * 5000

@task
def show(v):
    return len(v)

with DAG("big") as the_dag:
    show(big())
"""


class SizeCapTests:
    def test_it_refuses_a_result_over_the_xcom_limit_with_the_tasks_name(self, tmp_path: Path, settings: Any) -> None:
        settings.MAX_XCOM_SIZE = 1000
        run = make_run(tmp_path, BIG, dag_id="big")
        [big_id] = step(run)

        assert execute_task_instance(big_id) == "failed"

        assert "the return value of task 'big' is 5,002 bytes of JSON, more than the limit of 1,000 (MAX_XCOM_SIZE)" in log_of(run, "big")
        assert result(run, "big") is None

    def test_it_stores_a_shortened_copy_of_a_large_argument_for_display(self, tmp_path: Path, settings: Any) -> None:
        settings.MAX_DISPLAY_CHARS = 100
        run = make_run(tmp_path, BIG, dag_id="big")
        run = run_dag_run_inline(run, timeout=60)

        assert result(run, "show") == 5000  # the task got the whole value
        shown = ti(run, "show").rendered_fields["fields"]["op_args"][0]
        assert shown.startswith("x" * 100) and shown.endswith("(4,900 more characters not shown)")


MIXED_GROUP = """
from dagsapp.sdk import AirflowSkipException

@task
def make():
    return [0, 1, 2, 3, 4, 5]

@task(retries=1, retry_delay=timedelta(seconds=0))
def work(x):
    print(f"working on {x}")
    if x == 2:
        raise ValueError("two fails")
    if x == 3:
        raise AirflowSkipException("three skips")
    return x * 10

with DAG("mixed_group") as the_dag:
    work.expand(x=make())
"""


class GroupIsolationTests:
    """Instances committed together still end on their own: a failure or skip touches no other."""

    @pytest.fixture(autouse=True)
    def _one_group(self, settings) -> None:  # type: ignore[no-untyped-def]
        settings.EXECUTION_GROUP_BUDGET_MS = 60_000  # every instance after the first in one group

    def expanded(self, tmp_path: Path) -> tuple[DagRun, list[int]]:
        run = make_run(tmp_path, MIXED_GROUP, dag_id="mixed_group")
        [make_id] = step(run)
        assert execute_task_instance(make_id) == "success"
        step(run)
        ids = list(TaskInstance.objects.filter(dag_run=run, task_id="work").order_by("map_index").values_list("pk", flat=True))
        assert states(run, "work") == dict.fromkeys(range(6), "queued")
        return run, ids

    def test_it_retries_and_skips_single_instances_of_a_group_and_commits_the_others(self, tmp_path: Path) -> None:
        run, ids = self.expanded(tmp_path)

        with CaptureQueriesContext(connection) as queries:
            execute_task_instances(ids)

        # Index 0 alone, then 1..5 as one group: the four successes in one statement.
        commits = [q["sql"] for q in queries.captured_queries if "claimed AS (UPDATE runs_taskinstance" in q["sql"]]
        assert len(commits) == 2
        assert states(run, "work") == {0: "success", 1: "success", 2: "up_for_retry", 3: "skipped", 4: "success", 5: "success"}
        assert [result(run, "work", i) for i in range(6)] == [0, 10, None, None, 40, 50]
        for i in (0, 1, 4, 5):
            text = log_of(run, "work", i)
            assert f"working on {i}" in text and "Marking task as SUCCESS" in text, text
            assert text.count("Starting attempt 1 of 2") == 1 and "working on" not in text.replace(f"working on {i}", ""), text
        failed = log_of(run, "work", 2)
        assert "ValueError: two fails" in failed and "Marking task as UP_FOR_RETRY" in failed and "working on 3" not in failed
        skipped = log_of(run, "work", 3)
        assert "Skipping task: three skips" in skipped and "Marking task as SKIPPED" in skipped
        tries = dict(TaskInstance.objects.filter(pk__in=ids).values_list("map_index", "try_number"))
        assert tries == dict.fromkeys(range(6), 1)
        # Each instance has its own start and end: the group's claim time is not its start.
        rows = list(TaskInstance.objects.filter(pk__in=ids, state="success").order_by("map_index").values_list("start_date", "end_date"))
        assert all(start <= end for start, end in rows)
        assert [start for start, _ in rows] == sorted(start for start, _ in rows) and len({s for s, _ in rows}) == 4

        # The retry runs index 2 again as its second try; nothing else changes.
        TaskInstance.objects.filter(pk=ids[2]).update(state="queued", try_number=2)
        execute_task_instances([ids[2]])
        assert states(run, "work")[2] == "failed"
        assert "Starting attempt 2 of 2" in log_of(run, "work", 2, try_number=2)
        assert [result(run, "work", i) for i in range(6)] == [0, 10, None, None, 40, 50]

    def test_it_discards_only_the_result_of_an_instance_cleared_while_its_group_ran(self, tmp_path: Path) -> None:
        from runs.execution import execute

        run, ids = self.expanded(tmp_path)
        real = execute._prepare_success

        def clear_index_4_after_it_ran(attempt, result):  # type: ignore[no-untyped-def]
            success = real(attempt, result)
            if attempt.ti.map_index == 4:
                TaskInstance.objects.filter(pk=attempt.ti.pk).update(state="none")
            return success

        execute._prepare_success = clear_index_4_after_it_ran  # type: ignore[assignment]
        try:
            execute_task_instances(ids)
        finally:
            execute._prepare_success = real  # type: ignore[assignment]

        assert states(run, "work") == {0: "success", 1: "success", 2: "up_for_retry", 3: "skipped", 4: "none", 5: "success"}
        assert [result(run, "work", i) for i in range(6)] == [0, 10, None, None, None, 50]
        assert "result discarded" in log_of(run, "work", 4)
        assert "result discarded" not in log_of(run, "work", 5)

    def test_it_leaves_an_instance_queued_that_a_group_cannot_claim(self, tmp_path: Path) -> None:
        run, ids = self.expanded(tmp_path)
        TaskInstance.objects.filter(pk=ids[5]).update(state="scheduled")  # taken back before its group was claimed

        execute_task_instances(ids)

        assert states(run, "work")[5] == "scheduled"
        assert result(run, "work", 5) is None and result(run, "work", 4) == 40


def _claims_and_group_commits(sqls: list[str]) -> tuple[list[str], list[str]]:
    """A worker's statements that claim instances on their own, and its group commits (which claim the next group)."""
    return ([sql for sql in sqls if sql.startswith("UPDATE runs_taskinstance ti SET state = 'running'")],
            [sql for sql in sqls if "claimed AS (UPDATE runs_taskinstance ti SET state = 'running'" in sql])
