"""The scheduler's start_from_trigger step: per index, from the serialized DAG, in bulk."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from dagsapp.triggers import decode_kwargs
from runs.logs import read_log
from runs.models import TaskInstance, Trigger, XCom
from runs.scheduling.start_from_trigger import start_from_triggers
from tests.runs.factories import data, expand, make_run, schedule, ti
from tests.runs.triggering.dag_sources import DEFER_HEADER

pytestmark = pytest.mark.django_db

BIG = DEFER_HEADER + """
with DAG("big") as the_dag:
    WaitSensor.partial(task_id="wait", start_from_trigger=True, max_map_length=20000).expand(
        trigger_kwargs=[{"delta": 60 + i % 7} for i in range(10000)])
"""

UPSTREAM = DEFER_HEADER + """
@task
def list_waits():
    return [{"delta": 30}, {"delta": "{{ params.wait }}"}, {"delta": 45}]

with DAG("up", params={"wait": 40}) as the_dag:
    WaitSensor.partial(task_id="wait", start_from_trigger=True).expand(trigger_kwargs=list_waits())
    WaitSensor.partial(task_id="templated", start_from_trigger=True).expand(trigger_kwargs=[{"delta": "{{ 50 + map_index }}"}] * 2)
"""


def _defer(run) -> bool:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        return start_from_triggers(dag_run=run, data=data(run))


def _close(seconds: list[float], expected: list[int]) -> bool:
    return len(seconds) == len(expected) and all(0 <= s - e < 3 for s, e in zip(seconds, expected, strict=True))


class StartFromTriggerStepTests:
    def test_it_defers_ten_thousand_indexes_in_a_few_statements(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, BIG, dag_id="big")
        schedule(run)
        assert expand(run, "wait") == 10_000
        with CaptureQueriesContext(connection) as queries:
            while _defer(run):
                pass
        assert TaskInstance.objects.filter(dag_run=run, task_id="wait", state="deferred", try_number=1).count() == 10_000
        assert Trigger.objects.count() == 10_000
        # Two batches of 5,000: a select and one statement each (triggers, instances, first log line), then an empty select.
        statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
        assert len(statements) <= 6, [q[:80] for q in statements]
        first = ti(run, "wait", 3)
        assert first.trigger is not None and first.trigger.classpath == "dagsapp.triggers.DateTimeTrigger"
        assert "in the triggerer (start_from_trigger)" in read_log(first.pk, 1)[0]

    def test_it_resolves_trigger_kwargs_from_an_upstream_result_and_renders_templates(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, UPSTREAM, dag_id="up")
        TaskInstance.objects.filter(dag_run=run, task_id="list_waits").update(state="success")
        XCom.objects.create(dag_run=run, task_id="list_waits", map_index=-1, key="return_value",
                            value=[{"delta": 30}, {"delta": "{{ params.wait }}"}, {"delta": 45}])
        from runs.models import TaskMap

        TaskMap.objects.create(dag_run=run, task_id="list_waits", map_index=-1, length=3)
        schedule(run)
        expand(run, "wait")
        _defer(run)
        moments = [decode_kwargs(ti(run, "wait", i).trigger.kwargs)["moment"] for i in range(3)]  # type: ignore[union-attr]
        started = ti(run, "wait", 0).start_date
        # The moments are taken while the step runs, after its transaction began (start_date):
        # a loaded machine puts them up to a few seconds later, never earlier.
        assert _close([(m - started).total_seconds() for m in moments], [30, 40, 45])
        expand(run, "templated")
        _defer(run)
        moments = [decode_kwargs(ti(run, "templated", i).trigger.kwargs)["moment"] for i in range(2)]  # type: ignore[union-attr]
        assert _close([(m - started).total_seconds() for m in moments], [50, 51])

    def test_it_leaves_an_index_it_cannot_resolve_for_a_worker(self, tmp_path: Path) -> None:
        source = DEFER_HEADER + """
@task
def secs():
    return [1, 2]

with DAG("mapped_fn") as the_dag:
    WaitSensor.partial(task_id="wait", start_from_trigger=True).expand(trigger_kwargs=secs().map(lambda s: {"delta": s}))
"""
        run = make_run(tmp_path, source, dag_id="mapped_fn")
        XCom.objects.create(dag_run=run, task_id="secs", map_index=-1, key="return_value", value=[1, 2])
        from runs.models import TaskMap

        TaskMap.objects.create(dag_run=run, task_id="secs", map_index=-1, length=2)
        TaskInstance.objects.filter(dag_run=run, task_id="secs").update(state="success")
        schedule(run)
        expand(run, "wait")
        assert not _defer(run)
        assert set(TaskInstance.objects.filter(dag_run=run, task_id="wait").values_list("state", flat=True)) == {"scheduled"}


class RequeueLostResumeTests:
    def test_it_gives_back_a_try_only_for_a_new_try_not_for_a_resume(self, tmp_path: Path) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from runs.scheduling.steps import requeue_lost_task_instances

        run = make_run(tmp_path, UPSTREAM, dag_id="up")
        old = timezone.now() - timedelta(hours=1)
        TaskInstance.objects.filter(dag_run=run, task_id="list_waits").update(state="queued", try_number=1, queued_at=old)
        TaskInstance.objects.filter(dag_run=run, task_id="wait").update(state="queued", try_number=1, queued_at=old,
                                                                        next_method="execute_complete")
        assert requeue_lost_task_instances() == 2
        assert (ti(run, "list_waits").state, ti(run, "list_waits").try_number) == ("scheduled", 0)
        assert (ti(run, "wait").state, ti(run, "wait").try_number) == ("scheduled", 1)
