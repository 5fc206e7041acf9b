"""The triggerer's outbox: fired triggers stored in batches, each instance's lines before its outcome."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runs.logs import read_log
from runs.models import TaskInstance
from runs.scheduling.start_from_trigger import start_from_triggers
from runs.triggering import triggerer as triggerer_module
from runs.triggering.triggerer import Triggerer, _Outbox
from tests.runs.factories import data, expand, make_run, schedule
from tests.runs.triggering.dag_sources import MANY


class OutboxTests:
    def test_it_takes_only_the_lines_the_taken_outcomes_need(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(triggerer_module, "LINES_PER_FLUSH", 1)
        outbox = _Outbox()
        for ti_id, trigger_id in [(1, 11), (2, 12), (3, 13)]:
            outbox.line(ti_id, 1, f"running {ti_id}\n")
            outbox.line(ti_id, 1, f"fired {ti_id}\n")
            outbox.end(trigger_id, "success")
        events, ends, failures, lines = outbox.take(limit=1)
        # Before: every line of every trigger went with the first batch (13,320 lines with the
        # first 1,000 ends at 10,000 triggers, which held those ends back by a second).
        assert (ends, [text for _, _, text in lines]) == ([(11, "success")], ["running 1\n", "fired 1\n"])
        assert outbox.take(limit=1)[1:] == ([(12, "success")], [], [(2, 1, "running 2\n"), (2, 1, "fired 2\n")])

    def test_it_puts_back_what_was_not_stored_in_front_and_in_order(self) -> None:
        outbox = _Outbox()
        outbox.line(1, 1, "a\n")
        outbox.event(11, {"x": 1})
        outbox.line(2, 1, "b\n")
        outbox.event(12, {"x": 2})
        first = outbox.take(limit=1)
        outbox.restore(*first)
        assert outbox.take(limit=2) == ([(11, {"x": 1}), (12, {"x": 2})], [], [], [(1, 1, "a\n"), (2, 1, "b\n")])
        assert not outbox.pending()


@pytest.mark.django_db(transaction=True)
class ParallelFlushTests:
    def test_it_stores_many_fired_triggers_in_parallel_batches_each_instance_once_with_its_lines_first(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, MANY, dag_id="many")
        schedule(run)
        expand(run, "wait")
        while start_from_triggers(dag_run=run, data=data(run)):
            pass
        deferred = list(TaskInstance.objects.filter(dag_run=run, task_id="wait", state="deferred"))
        assert len(deferred) == 200
        triggerer = Triggerer(capacity=500)
        triggerer.outbox.batch = 30
        for instance in deferred:
            triggerer.outbox.line(instance.pk, instance.try_number, f"trigger line of {instance.map_index}\n")
            assert instance.trigger_id is not None
            triggerer.outbox.end(instance.trigger_id, "success")
        triggerer.outbox.end(deferred[0].trigger_id, "success")  # a second event for one instance changes nothing

        async def drain() -> None:
            while triggerer.outbox.pending():
                await triggerer._flush_parallel()

        try:
            asyncio.run(drain())
        finally:
            triggerer.shutdown_flushers()
        after = list(TaskInstance.objects.filter(dag_run=run, task_id="wait"))
        assert {(t.state, t.try_number, t.trigger_id) for t in after} == {("success", 1, None)}
        for instance in deferred[:5] + deferred[-5:]:
            text = read_log(instance.pk, 1)[0]
            assert text.index(f"trigger line of {instance.map_index}") < text.index("Trigger ended the task"), text
            assert text.count("Trigger ended the task") == 1


@pytest.mark.django_db(transaction=True)
class SweepTests:
    def test_it_deletes_triggers_no_instance_waits_on_once_they_are_a_minute_old(self, tmp_path: Path) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from runs.models import Trigger

        run = make_run(tmp_path, MANY, dag_id="many")
        schedule(run)
        expand(run, "wait")
        start_from_triggers(dag_run=run, data=data(run))
        # Drawn for an instance another scheduler deferred first (defer_many): nobody waits on them.
        old = Trigger.objects.create(classpath="dagsapp.triggers.TimeDeltaTrigger", kwargs={}, created_date=timezone.now() - timedelta(minutes=5))
        fresh = Trigger.objects.create(classpath="dagsapp.triggers.TimeDeltaTrigger", kwargs={}, created_date=timezone.now())
        triggerer = Triggerer(capacity=500)
        triggerer.job_id = triggerer._register()
        try:
            mine = triggerer._sync()
        finally:
            triggerer.shutdown_flushers()
        assert not Trigger.objects.filter(pk=old.pk).exists()
        assert Trigger.objects.filter(pk=fresh.pk).exists()
        assert len(mine) == 200 and Trigger.objects.count() == 201
