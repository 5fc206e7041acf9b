"""The triggerer's outbox: fired triggers stored in batches, each instance's lines before its outcome."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runs.logs import read_log
from runs.models import DagRun, TaskInstance
from runs.scheduling.start_from_trigger import start_from_triggers
from runs.triggering import triggerer as triggerer_module
from runs.triggering.triggerer import Triggerer, _Outbox
from tests.runs.factories import data, expand, make_run, schedule
from tests.runs.triggering.dag_sources import MANY


def _deferred_many(tmp_path: Path) -> DagRun:
    """A run of ``many`` whose 200 start-from-trigger instances are deferred, each on its trigger."""
    run = make_run(tmp_path, MANY, dag_id="many")
    schedule(run)
    expand(run, "wait")
    while start_from_triggers(dag_run=run, data=data(run)):
        pass
    return run


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
        run = _deferred_many(tmp_path)
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


class FlushPumpTests:
    def test_it_starts_the_next_batch_as_soon_as_a_flush_thread_is_free(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import threading
        import time

        triggerer = Triggerer(capacity=10)
        triggerer.outbox.batch = 1
        for trigger_id in (1, 2, 3):
            triggerer.outbox.end(trigger_id, "success")
        spans: dict[int, list[float]] = {}

        def store(batch: object, after: threading.Event | None) -> None:
            (trigger_id, _), = batch.ends  # type: ignore[attr-defined]
            spans[trigger_id] = [time.monotonic()]
            batch.lines_stored.set()  # type: ignore[attr-defined]
            time.sleep(0.5 if trigger_id == 1 else 0.05)  # the first batch is a slow one
            spans[trigger_id].append(time.monotonic())

        monkeypatch.setattr(triggerer, "_store", store)
        try:
            asyncio.run(triggerer._flush_parallel())
        finally:
            triggerer.shutdown_flushers()
        assert sorted(spans) == [1, 2, 3] and not triggerer.outbox.pending()
        # Before, batches went in pairs and the third waited for the slow first one to end.
        assert spans[3][0] < spans[1][1]


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


class OutboxMarkTests:
    def test_it_takes_no_line_for_outcomes_whose_lines_went_already_and_the_rest_when_none_waits(self) -> None:
        outbox = _Outbox()
        outbox.line(1, 1, "running 1\n")
        outbox.end(11, "success")
        outbox.line(2, 1, "running 2\n")
        outbox.line(2, 1, "fired 2\n")
        assert outbox.take() == ([], [(11, "success")], [], [(1, 1, "running 1\n")])
        outbox.end(12, "success")
        outbox.line(3, 1, "running 3\n")
        assert outbox.take() == ([], [(12, "success")], [], [(2, 1, "running 2\n"), (2, 1, "fired 2\n")])
        assert outbox.take() == ([], [], [], [(3, 1, "running 3\n")])
        assert not outbox.pending()


@pytest.mark.django_db(transaction=True)
class StartedLinesTests:
    def test_it_stores_the_lines_of_triggers_it_started_right_after_the_pass_not_a_heartbeat_later(self, tmp_path: Path) -> None:
        import threading
        import time

        from runs.models import TaskInstanceLog

        run = _deferred_many(tmp_path)
        # A heartbeat far longer than the wait below: only the pass that starts the triggers runs.
        triggerer = Triggerer(capacity=500, heartbeat_sec=60)
        thread = threading.Thread(target=asyncio.run, args=(triggerer._main(),), daemon=True)
        thread.start()
        running = TaskInstanceLog.objects.filter(task_instance__dag_run=run, text__contains="running in triggerer")
        try:
            # Its triggers fire after 6 s: before the fix their "running" lines waited until then.
            deadline = time.monotonic() + 3
            while running.count() < 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            # Before: they waited for the next full pass (a heartbeat), and then rode with the
            # first fired batch when thousands of triggers fired before it (0.6 s for 10,000).
            assert running.count() == 200
        finally:
            triggerer.request_stop()
            thread.join(timeout=30)
            from django.db import connection

            triggerer._db.submit(lambda: connection.close()).result()
            triggerer._db.shutdown(wait=True)
            triggerer.shutdown_flushers()


class WatchdogTests:
    def test_it_does_not_blame_a_trigger_when_its_own_pass_holds_the_loop(self, caplog: pytest.LogCaptureFixture) -> None:
        import logging
        import threading
        import time

        triggerer = Triggerer(capacity=10)

        async def main() -> None:
            triggerer._loop = asyncio.get_running_loop()
            ticker = asyncio.ensure_future(triggerer._ticks())
            await asyncio.sleep(0.1)
            # Its own work (starting 10,000 triggers took 2.3 s at load 8): no trigger is at fault.
            time.sleep(0.6)
            ticker.cancel()

        watchdog = threading.Thread(target=triggerer._watch_loop, daemon=True)
        with caplog.at_level(logging.WARNING, logger="runs.triggering.triggerer"):
            watchdog.start()
            try:
                asyncio.run(main())
            finally:
                triggerer.stop.set()
                watchdog.join(timeout=5)
                triggerer.shutdown_flushers()
        # Before: "Triggerer event loop blocked ... by Task-1: a trigger must not block in run()".
        assert "a trigger must not block" not in caplog.text
