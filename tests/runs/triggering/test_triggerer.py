"""The triggerer as a real process beside a scheduler and a 2-process Celery worker."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from runs.cli import wait_for_dag_run
from runs.logs import read_log
from runs.models import DagRun, TaskInstance, Trigger, XCom
from runs.services import DagRunError, clear_task_instances, create_dag_run
from tests.conftest import LiveStack
from tests.runs.factories import write_dag
from tests.runs.triggering.dag_sources import BLOCKING, CLASSIC, CLEAR, FAILING, MANY, TIMEOUT, TWELVE

pytestmark = pytest.mark.django_db(transaction=True)


def _start(tmp_path: Path, live_stack: Callable[..., LiveStack], source: str, dag_id: str, **kwargs: object) -> tuple[LiveStack, DagRun]:
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    write_dag(dags, source)
    stack = live_stack(dags_folder=dags, triggerer=True, **kwargs)
    deadline = time.monotonic() + 60
    while True:
        try:
            return stack, create_dag_run(dag_id=dag_id, logical_date=timezone.now())
        except DagRunError:
            if time.monotonic() > deadline:
                raise AssertionError(stack.report()) from None
            time.sleep(0.2)


def _logs(run: DagRun) -> str:
    return "\n".join(f"--- {t.task_id}[{t.map_index}] {t.state} try {t.try_number}\n{read_log(t.pk, t.try_number)[0]}"
                     for t in TaskInstance.objects.filter(dag_run=run).order_by("task_id", "map_index")[:5])


def _states(run: DagRun, task_id: str) -> list[str]:
    return list(TaskInstance.objects.filter(dag_run=run, task_id=task_id).order_by("map_index").values_list("state", flat=True))


def _wait_for(predicate: Callable[[], bool], stack: LiveStack, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(stack.report(tail=4000))
        time.sleep(0.1)


class TriggererProcessTests:
    def test_it_runs_twelve_three_second_waits_at_once_not_one_worker_slot_each(self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        stack, run = _start(tmp_path, live_stack, TWELVE, "twelve")
        started = time.monotonic()
        run = wait_for_dag_run(run, timeout=60)
        took = time.monotonic() - started
        assert run.state == "success", _logs(run) + stack.report(tail=3000)
        assert _states(run, "wait") == ["success"] * 12
        # Holding one of 2 worker slots each, 12 waits of 3 s would take 18 s.
        print(f"12 mapped 3 s waits from trigger to run success: {took:.1f} s")
        assert took < 10, took
        tis = TaskInstance.objects.filter(dag_run=run, task_id="wait")
        assert all(ti.try_number == 1 for ti in tis)
        assert "executed on a worker" not in "".join(read_log(ti.pk, 1)[0] for ti in tis)

    def test_it_resumes_a_classic_deferral_with_the_event_and_writes_the_trigger_lines_in_order(
            self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        stack, run = _start(tmp_path, live_stack, CLASSIC, "classic")
        run = wait_for_dag_run(run, timeout=60)
        assert run.state == "success", _logs(run) + stack.report(tail=3000)
        ti = TaskInstance.objects.get(dag_run=run, task_id="wait")
        assert XCom.objects.get(dag_run=run, task_id="wait").value == {"event": {"n": -1}, "who": "wait"}
        text, _ = read_log(ti.pk, 1)
        order = ["before the deferral", "Pausing task as DEFERRED", "running in triggerer", "echo trigger waiting 0.2 s",
                 "printed by the trigger", "Trigger fired", "Resuming after deferral", "resumed wait with"]
        positions = [text.find(s) for s in order]
        assert -1 not in positions and positions == sorted(positions), text

    def test_it_fails_on_a_raising_trigger_and_on_a_timeout(self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        dags = tmp_path / "dags"
        dags.mkdir()
        write_dag(dags, FAILING, name="failing.py")
        write_dag(dags, TIMEOUT, name="timeout.py")
        stack = live_stack(dags_folder=dags, triggerer=True)
        _wait_for(lambda: DagRun.objects.exists() or _try_create(("failing", "timeout")), stack)
        runs = [wait_for_dag_run(r, timeout=60) for r in DagRun.objects.all()]
        by_dag = {r.dag_id: r for r in runs}
        fail = TaskInstance.objects.get(dag_run=by_dag["failing"], task_id="fail")
        assert fail.state == "failed"
        assert "RuntimeError: the partner API said no" in read_log(fail.pk, 1)[0]
        assert _states(by_dag["timeout"], "forever") == ["failed"]
        assert _states(by_dag["timeout"], "soft") == ["skipped"]

    def test_it_cancels_the_trigger_of_a_cleared_instance_and_defers_it_again(self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        stack, run = _start(tmp_path, live_stack, CLEAR, "clear_me")
        _wait_for(lambda: _states(run, "forever") == ["deferred"] and Trigger.objects.filter(triggerer__isnull=False).exists(), stack)
        first = Trigger.objects.get().pk
        clear_task_instances(dag_run=run, task_id="forever", map_indexes=[-1])
        assert not Trigger.objects.filter(pk=first).exists()
        _wait_for(lambda: TaskInstance.objects.filter(dag_run=run, state="deferred", try_number=2).exists(), stack)
        _wait_for(lambda: Trigger.objects.filter(triggerer__isnull=False).exists(), stack)
        assert Trigger.objects.count() == 1

    def test_it_names_a_trigger_that_blocks_the_event_loop(self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        stack, run = _start(tmp_path, live_stack, BLOCKING, "blocking")
        run = wait_for_dag_run(run, timeout=60)
        assert run.state == "success"
        assert "blocked for more than 0.2 s by trigger-" in stack.output("triggerer")
        ti = TaskInstance.objects.get(dag_run=run, task_id="block")
        assert "blocked the triggerer's event loop" in read_log(ti.pk, 1)[0]


def _try_create(dag_ids: tuple[str, ...]) -> bool:
    try:
        for dag_id in dag_ids:
            create_dag_run(dag_id=dag_id, logical_date=timezone.now())
    except DagRunError:
        return False
    return True


class AdoptionTests:
    def test_it_adopts_the_triggers_of_a_killed_triggerer_each_instance_succeeding_once(
            self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        stack, run = _start(tmp_path, live_stack, MANY, "many", env={"TRIGGERER_HEARTBEAT_TIMEOUT_SEC": "3"})
        _wait_for(lambda: Trigger.objects.filter(triggerer__isnull=False).count() == 200, stack)
        stack.kill("triggerer")
        from runs.processes import triggerer_argv

        stack.start("triggerer2", triggerer_argv())
        run = wait_for_dag_run(run, timeout=90)
        assert run.state == "success", _logs(run) + stack.report(tail=3000)
        tis = list(TaskInstance.objects.filter(dag_run=run, task_id="wait"))
        assert len(tis) == 200 and {(t.state, t.try_number) for t in tis} == {("success", 1)}
        assert XCom.objects.filter(dag_run=run, task_id="wait").count() == 200
        adopted = [t for t in tis if "running in triggerer" in read_log(t.pk, 1)[0]]
        assert len(adopted) == 200
        assert not Trigger.objects.exists()


class HealthTests:
    def test_it_reports_the_scheduler_and_triggerer_heartbeats_without_login(self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        stack, _run = _start(tmp_path, live_stack, CLEAR, "clear_me")
        _wait_for(lambda: Client().get("/health").json()["triggerer"]["status"] == "healthy", stack)
        body = Client().get("/health").json()
        assert body["scheduler"]["status"] == "healthy" and body["scheduler"]["latest_scheduler_heartbeat"]
        assert body["triggerer"]["latest_triggerer_heartbeat"]
        stack.stop("triggerer")
        body = Client().get("/health").json()
        assert body["triggerer"]["status"] == "unhealthy"
        assert json.dumps(body).count("password") == 0



class DeferralExamplesTests:
    def test_it_runs_the_deferral_examples_on_the_live_stack(self, live_stack: Callable[..., LiveStack]) -> None:
        from runs.scheduling.dag_processing import process_dags_folder

        process_dags_folder()
        stack = live_stack(triggerer=True)
        runs = {d: create_dag_run(dag_id=d, logical_date=timezone.now())
                for d in ("example_deferral_wait", "example_file_sensor", "example_postgres_trigger")}
        for dag_id, run in runs.items():
            run = wait_for_dag_run(run, timeout=90)
            assert run.state == "success", (dag_id, _logs(run), stack.report(tail=3000))
        files = runs["example_file_sensor"]
        assert list(XCom.objects.filter(dag_run=files, task_id="load").order_by("map_index").values_list("value", flat=True)) == [42] * 3
        row = TaskInstance.objects.get(dag_run=runs["example_postgres_trigger"], task_id="wait_for_row")
        log = read_log(row.pk, 1)[0]
        assert "Pausing task as DEFERRED" in log and "_pg_row_trigger" in log and "found row" in log
        assert XCom.objects.get(dag_run=runs["example_postgres_trigger"], task_id="wait_for_row").value == {"status": "done", "rows": 42}
