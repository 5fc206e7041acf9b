"""runs/deferral.py: every change to a deferred instance is a compare-and-swap on its trigger."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from dagsapp.triggers import TimeDeltaTrigger
from runs import deferral
from runs.logs import read_log
from runs.models import TaskInstance, Trigger
from runs.services import clear_task_instances, mark_task_instances
from tests.runs.factories import make_run, ti
from tests.runs.triggering.dag_sources import CLEAR

pytestmark = pytest.mark.django_db


def _deferred(tmp_path: Path, *, timeout: timedelta | None = None) -> TaskInstance:
    run = make_run(tmp_path, CLEAR, dag_id="clear_me")
    TaskInstance.objects.filter(dag_run=run).update(state="running", try_number=1)
    assert deferral.defer_task_instance(ti_id=ti(run, "forever").pk, try_number=1, trigger=TimeDeltaTrigger(60),
                                        method_name="done", kwargs={"a": 1}, timeout=timeout)
    return ti(run, "forever")


class DeferralTests:
    def test_it_defers_only_the_try_that_still_runs(self, tmp_path: Path) -> None:
        instance = _deferred(tmp_path)
        assert (instance.state, instance.next_method, instance.next_kwargs) == ("deferred", "done", {"a": 1})
        again = deferral.defer_task_instance(ti_id=instance.pk, try_number=1, trigger=TimeDeltaTrigger(1), method_name="done",
                                             kwargs=None, timeout=None)
        assert again is False and Trigger.objects.count() == 1

    def test_it_resumes_with_the_event_added_to_the_kwargs_and_drops_the_trigger(self, tmp_path: Path) -> None:
        instance = _deferred(tmp_path)
        assert deferral.resume_from_events([(instance.trigger_id, {"at": timezone.now()})]) == 1
        instance.refresh_from_db()
        assert instance.state == "scheduled" and instance.trigger_id is None
        assert set(instance.next_kwargs) == {"a", "event"}
        assert not Trigger.objects.exists()

    def test_it_drops_an_event_for_an_instance_that_was_cleared(self, tmp_path: Path) -> None:
        instance = _deferred(tmp_path)
        old_trigger = instance.trigger_id
        clear_task_instances(dag_run=instance.dag_run, task_id="forever", map_indexes=[-1])
        assert not Trigger.objects.filter(pk=old_trigger).exists()
        assert deferral.resume_from_events([(old_trigger, "late")]) == 0
        instance.refresh_from_db()
        assert (instance.state, instance.next_method) == ("none", None)

    def test_it_cancels_the_trigger_of_an_instance_marked_success(self, tmp_path: Path) -> None:
        instance = _deferred(tmp_path)
        mark_task_instances(dag_run=instance.dag_run, task_id="forever", map_indexes=[-1], state="success")
        instance.refresh_from_db()
        assert instance.state == "success" and not Trigger.objects.exists()

    def test_it_ends_an_instance_from_a_task_end_event(self, tmp_path: Path) -> None:
        instance = _deferred(tmp_path)
        assert deferral.end_from_events([(instance.trigger_id, "skipped")]) == 1
        instance.refresh_from_db()
        assert instance.state == "skipped" and instance.end_date is not None
        assert "Trigger ended the task: marking task as SKIPPED" in read_log(instance.pk, 1)[0]

    def test_it_sends_a_timed_out_deferral_to_a_worker_to_fail(self, tmp_path: Path) -> None:
        instance = _deferred(tmp_path, timeout=timedelta(seconds=-1))
        assert deferral.time_out_deferrals() == 1
        instance.refresh_from_db()
        assert (instance.state, instance.next_method) == ("scheduled", "__fail__")
        assert instance.next_kwargs["error"] == "Trigger timeout"
        assert "Trigger timeout" in read_log(instance.pk, 1)[0]
