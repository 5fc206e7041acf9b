"""Two schedulers at once: threads, each with its own database connection, on the same runs.

transaction=True: each thread's connection only sees committed rows, as separate processes would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count

from runs.cli import wait_for_dag_run
from runs.models import DagRun, DagRunState, TaskInstance, TaskMap, XCom
from runs.scheduling import steps
from runs.scheduling.dag_processing import process_dags_folder
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.loop import create_scheduled_dag_runs
from runs.scheduling.steps import expand_mapped_task, queue_task_instances, schedule_dag_run, schedule_task_instances
from runs.services import create_dag_run
from tests.dag_sources import daily
from tests.runs.factories import write_dag

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 2

BUSY = """
@task
def make():
    return list(range(20))

@task
def add(x):
    return x

@task
def show(v):
    return v

@task
def total(values):
    return sum(values)

@task
def first(n):
    return n

@task
def second(n):
    return n

@task_group
def per_number(n):
    second(first(n))

with DAG("busy") as the_dag:
    total(show.expand(v=add.expand(x=make())))
    per_number.expand(n=list(range(10)))
"""
# make 1 + add 20 + show 20 + total 1 + first 10 + second 10
INSTANCES_PER_RUN = 62


def in_threads(target: Callable[[int], Any], n: int = THREADS) -> list[Any]:
    """Runs target(i) in n threads started together; re-raises the first error."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
        finally:
            # Each thread opened its own connection; leave none behind for the test database drop.
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


def finish(ti_ids: list[int]) -> None:
    """Plays the worker: each queued instance succeeds and leaves what a real one would.

    In one transaction, as the worker commits: the other scheduler must never see a success
    whose result or TaskMap is not there yet (it would fail the downstream expansion).
    """
    for ti in TaskInstance.objects.filter(pk__in=ti_ids).select_related("dag_run"):
        with transaction.atomic():
            if not TaskInstance.objects.filter(pk=ti.pk, state="queued").update(state="success"):
                continue
            value: Any = list(range(20)) if ti.task_id == "make" else ti.map_index
            XCom.objects.create(dag_run=ti.dag_run, task_id=ti.task_id, map_index=ti.map_index, value=value)
            if ti.task_id == "make":
                TaskMap.objects.create(dag_run=ti.dag_run, task_id="make", map_index=-1, length=20)


def duplicates() -> int:
    return TaskInstance.objects.values("dag_run", "task_id", "map_index").annotate(n=Count("id")).filter(n__gt=1).count()


@pytest.fixture
def busy_runs(tmp_path: Path) -> list[DagRun]:
    write_dag(tmp_path, BUSY)
    process_dags_folder(tmp_path)
    return [create_dag_run(dag_id="busy", run_id=f"run_{i}") for i in range(3)]


class SchedulerThreadsTests:
    def test_it_drives_the_same_runs_from_two_schedulers_without_duplicates(self, busy_runs: list[DagRun]) -> None:
        run_ids = [r.pk for r in busy_runs]

        def scheduler(i: int) -> list[int]:
            queued: list[int] = []
            for _ in range(300):
                for run_id in run_ids:
                    executor = InlineExecutor()
                    schedule_dag_run(dag_run_id=run_id, executor=executor)
                    queued += executor.pending
                    finish(executor.pending)
                if not DagRun.objects.filter(pk__in=run_ids).exclude(state=DagRunState.SUCCESS).exists():
                    break
            return queued

        queued = [pk for ids in in_threads(scheduler) for pk in ids]

        assert list(DagRun.objects.filter(pk__in=run_ids).values_list("state", flat=True)) == ["success"] * 3
        assert duplicates() == 0
        assert TaskInstance.objects.filter(dag_run__in=run_ids).count() == INSTANCES_PER_RUN * 3
        assert not TaskInstance.objects.filter(dag_run__in=run_ids, task_id__in=["add", "show"], map_index=-1).exists()
        # Each instance was handed to an executor exactly once, by one of the two schedulers.
        assert len(queued) == len(set(queued)) == INSTANCES_PER_RUN * 3
        assert set(TaskInstance.objects.filter(dag_run__in=run_ids).values_list("try_number", flat=True)) == {1}

    def test_it_expands_once_when_two_schedulers_bypass_the_run_lock(self, busy_runs: list[DagRun]) -> None:
        for run in busy_runs:
            data = run.serialized_dag.data

            def expander(i: int, run: DagRun = run, data: dict[str, Any] = data) -> int:
                return expand_mapped_task(dag_run=run, data=data, task_id="per_number.first")

            created = in_threads(expander)

            assert sorted(created) == [0, 10]
            assert TaskInstance.objects.filter(dag_run=run, task_id="per_number.first").count() == 10
        assert duplicates() == 0

    def test_it_queues_each_instance_once_when_two_schedulers_bypass_the_run_lock(self, busy_runs: list[DagRun]) -> None:
        for run in busy_runs:
            data = run.serialized_dag.data
            expand_mapped_task(dag_run=run, data=data, task_id="per_number.first")

            def queuer(i: int, run: DagRun = run, data: dict[str, Any] = data) -> list[int]:
                executor = InlineExecutor()
                schedule_task_instances(dag_run=run, data=data)
                queue_task_instances(dag_run=run, data=data, executor=executor)
                return executor.pending

            queued = [pk for ids in in_threads(queuer) for pk in ids]

            expected = set(TaskInstance.objects.filter(dag_run=run, state="queued").values_list("pk", flat=True))
            assert len(queued) == len(set(queued))
            assert set(queued) == expected
            # make and the ten group roots; everything else waits on them.
            assert len(expected) == 11
            assert set(TaskInstance.objects.filter(dag_run=run, state="queued").values_list("try_number", flat=True)) == {1}


    def test_it_lets_a_worker_store_a_result_while_a_scheduler_pass_holds_the_run(
            self, busy_runs: list[DagRun], monkeypatch: pytest.MonkeyPatch) -> None:
        # A result's foreign key check takes FOR KEY SHARE on its run: the pass's lock must not
        # conflict with it, or every worker's commit waits for the scheduler.
        run = busy_runs[0]
        inside, release = threading.Event(), threading.Event()
        expand = steps.expand_mapped_tasks

        def held(**kwargs: Any) -> bool:
            inside.set()
            release.wait(10)
            return expand(**kwargs)

        monkeypatch.setattr(steps, "expand_mapped_tasks", held)

        def scheduler_pass() -> None:
            try:
                schedule_dag_run(dag_run_id=run.pk, executor=InlineExecutor())
            finally:
                connections.close_all()

        holder = threading.Thread(target=scheduler_pass)
        holder.start()
        try:
            assert inside.wait(10)
            with connection.cursor() as cur:
                cur.execute("SET lock_timeout = '2s'")
            with transaction.atomic():
                XCom.objects.create(dag_run=run, task_id="make", map_index=-1, value=[1])
        finally:
            release.set()
            holder.join(10)
            with connection.cursor() as cur:
                cur.execute("SET lock_timeout = 0")

        assert XCom.objects.filter(dag_run=run, task_id="make").exists()


class ScheduledRunThreadsTests:
    def test_it_creates_each_scheduled_run_once_from_two_schedulers(self, tmp_path: Path) -> None:
        write_dag(tmp_path, daily(catchup=True))
        process_dags_folder(tmp_path)
        now = datetime(2024, 1, 6, 6, tzinfo=UTC)

        def creator(i: int) -> int:
            created = 0
            for _ in range(20):
                created += create_scheduled_dag_runs(now=now)
            return created

        created = in_threads(creator)

        dates = list(DagRun.objects.filter(dag_id="daily").order_by("logical_date").values_list("logical_date", flat=True))
        assert dates == [datetime(2024, 1, d, tzinfo=UTC) for d in range(1, 6)]
        assert sum(created) == 5


LIVE = """
@task
def make():
    return list(range(15))

@task
def add(x):
    return x + 1

@task
def total(values):
    return sum(values)

with DAG("live") as the_dag:
    total(add.expand(x=make()))
"""


class SchedulerProcessesTests:
    def test_it_runs_mapped_dags_with_two_scheduler_processes(self, live_stack: Callable[..., Any], tmp_path: Path) -> None:
        dags = tmp_path / "dags"
        dags.mkdir()
        write_dag(dags, LIVE)
        process_dags_folder(dags)
        first = live_stack(dags_folder=dags, concurrency=4)
        second = live_stack(dags_folder=dags, worker=False)
        # Created after both started: starting a stack purges the broker.
        runs = [create_dag_run(dag_id="live", run_id=f"live_{i}") for i in range(3)]

        try:
            for run in runs:
                wait_for_dag_run(run, timeout=90)
        except TimeoutError:
            pytest.fail(f"runs did not finish\n{first.report()}\n{second.report()}")

        assert [r.state for r in runs] == ["success"] * 3
        assert duplicates() == 0
        assert set(TaskInstance.objects.filter(dag_run__in=runs).values_list("try_number", flat=True)) == {1}
        assert list(XCom.objects.filter(dag_run__in=runs, task_id="total").values_list("value", flat=True)) == [120] * 3
        assert "Traceback" not in first.output("scheduler") + second.output("scheduler")


ONE_AT_A_TIME = """
with DAG("one_at_a_time", max_active_runs=1) as the_dag:
    EmptyOperator(task_id="a")
"""


class RunLockThreadsTests:
    def test_it_starts_one_run_when_two_schedulers_start_different_runs_of_a_dag(self, tmp_path: Path) -> None:
        write_dag(tmp_path, ONE_AT_A_TIME)
        process_dags_folder(tmp_path)
        for attempt in range(10):
            runs = [create_dag_run(dag_id="one_at_a_time", run_id=f"r{attempt}_{i}") for i in range(THREADS)]

            def starter(i: int, runs: list[DagRun] = runs) -> bool:
                return schedule_dag_run(dag_run_id=runs[i].pk, executor=InlineExecutor())

            in_threads(starter)

            assert DagRun.objects.filter(dag_id="one_at_a_time", state=DagRunState.RUNNING).count() == 1
            DagRun.objects.filter(dag_id="one_at_a_time").update(state=DagRunState.SUCCESS)

    def test_it_works_on_another_run_of_the_same_dag_while_one_is_locked(self, busy_runs: list[DagRun]) -> None:
        DagRun.objects.filter(pk__in=[r.pk for r in busy_runs]).update(state=DagRunState.RUNNING)
        locked, release = threading.Event(), threading.Event()

        class SlowExecutor(InlineExecutor):
            def queue(self, ti_ids: list[int]) -> None:
                locked.set()
                release.wait(30)

        def holder() -> None:
            # Another scheduler, stopped in the middle of its pass over run_0 (inside its transaction).
            try:
                schedule_dag_run(dag_run_id=busy_runs[0].pk, executor=SlowExecutor())
            finally:
                connections.close_all()

        thread = threading.Thread(target=holder)
        thread.start()
        try:
            assert locked.wait(30)
            assert not schedule_dag_run(dag_run_id=busy_runs[0].pk, executor=InlineExecutor())
            executor = InlineExecutor()
            assert schedule_dag_run(dag_run_id=busy_runs[1].pk, executor=executor)
        finally:
            release.set()
            thread.join(30)
        assert len(executor.pending) == 11  # make and the ten group roots of run_1
