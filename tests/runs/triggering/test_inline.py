"""Deferral end to end in one process (``dags test``): the worker's code, the scheduler's steps and
the triggers, on the real database."""
from __future__ import annotations

from pathlib import Path

import pytest

from runs.cli import run_dag_run_inline
from runs.logs import read_log
from runs.models import TaskInstance, Trigger, XCom
from tests.runs.factories import make_run
from tests.runs.triggering.dag_sources import CLASSIC, FAILING, MAPPED, TIMEOUT

pytestmark = pytest.mark.django_db(transaction=True)


def _ti(run, task_id: str, map_index: int = -1) -> TaskInstance:  # type: ignore[no-untyped-def]
    return TaskInstance.objects.get(dag_run=run, task_id=task_id, map_index=map_index)


def _value(run, task_id: str, map_index: int = -1):  # type: ignore[no-untyped-def]
    return XCom.objects.filter(dag_run=run, task_id=task_id, map_index=map_index).values_list("value", flat=True).first()


class ClassicDeferralTests:
    def test_it_resumes_next_method_with_the_event_and_the_kwargs_in_the_same_try(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(make_run(tmp_path, CLASSIC, dag_id="classic"), timeout=30)
        assert run.state == "success", [(t.task_id, t.state, read_log(t.pk, t.try_number)[0]) for t in TaskInstance.objects.filter(dag_run=run)]
        ti = _ti(run, "wait")
        assert (ti.state, ti.try_number) == ("success", 1)
        assert _value(run, "wait") == {"event": {"n": -1}, "who": "wait"}
        text, _ = read_log(ti.pk, 1)
        # The trigger's own log line and print land in the try's log too, between the deferral and its event.
        order = ["before the deferral", "Pausing task as DEFERRED", "echo trigger waiting", "printed by the trigger", "Trigger fired",
                 "Resuming after deferral", "resumed wait with"]
        positions = [text.index(s) for s in order]
        assert positions == sorted(positions), text
        assert not Trigger.objects.exists()

    def test_it_fails_the_instance_of_a_trigger_that_raises_with_its_traceback(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(make_run(tmp_path, FAILING, dag_id="failing"), timeout=30)
        assert run.state == "failed"
        fail = _ti(run, "fail")
        assert fail.state == "failed"
        text, _ = read_log(fail.pk, 1)
        assert "RuntimeError: the partner API said no" in text and "TaskDeferralError" in text
        silent = _ti(run, "silent")
        assert silent.state == "failed"
        assert "Trigger ended without an event" in read_log(silent.pk, 1)[0]

    def test_it_fails_a_timed_out_deferral_and_skips_a_soft_fail_sensor(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(make_run(tmp_path, TIMEOUT, dag_id="timeout"), timeout=30)
        assert _ti(run, "forever").state == "failed"
        assert "Trigger timeout" in read_log(_ti(run, "forever").pk, 1)[0]
        assert _ti(run, "soft").state == "skipped"


class MappedStartFromTriggerTests:
    def test_it_starts_each_index_from_its_own_trigger_without_a_worker_slot(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(make_run(tmp_path, MAPPED, dag_id="mapped"), timeout=60)
        for task_id, n in (("literal", 2), ("upstream", 3)):
            for i in range(n):
                ti = _ti(run, task_id, i)
                assert (ti.state, ti.try_number) == ("success", 1), (task_id, i)
                assert _value(run, task_id, i) == "trigger"
                text, _ = read_log(ti.pk, 1)
                assert "in the triggerer (start_from_trigger)" in text and "executed on a worker" not in text

    def test_it_sends_an_index_whose_start_from_trigger_is_false_to_a_worker(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(make_run(tmp_path, MAPPED, dag_id="mapped"), timeout=60)
        assert [_value(run, "mixed", i) for i in (0, 1)] == ["trigger", "worker"]

    def test_it_fails_only_the_index_with_wrong_trigger_kwargs_naming_task_index_and_key(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(make_run(tmp_path, MAPPED, dag_id="mapped"), timeout=60)
        assert [_ti(run, "wrong", i).state for i in range(3)] == ["success", "failed", "failed"]
        assert "task 'wrong' index 1: trigger_kwargs key 'hours' is not accepted by TimeDeltaTrigger" in read_log(_ti(run, "wrong", 1).pk, 1)[0]
        assert "task 'wrong' index 2: trigger_kwargs must be a dict, not 'str'" in read_log(_ti(run, "wrong", 2).pk, 1)[0]
