"""The scheduler loop survives whatever one run's step raises, and goes on with the other runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from runs.models import DagRun, XCom
from runs.scheduling import steps
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.loop import Scheduler
from runs.services import create_dag_run
from tests.runs.factories import make_run, record_length, states

pytestmark = pytest.mark.django_db(transaction=True)

TWO_STEPS = """
@task
def make():
    return [1, 2]

@task(map_index_template="{{ mapping.value }}")
def add(x):
    return x + 1

with DAG("two_steps") as the_dag:
    add.expand(x=make())
"""

STEPS = ["expand_mapped_tasks", "schedule_task_instances", "queue_task_instances", "update_dag_run_state", "name_mapped_instances"]


def poisoned(monkeypatch: pytest.MonkeyPatch, step: str, victim: DagRun) -> None:
    """Make ``step`` raise for ``victim`` only, as a bug or a hostile input would."""
    real: Callable[..., Any] = getattr(steps, step)

    def step_that_raises(*, dag_run: DagRun, **kwargs: Any) -> Any:
        if dag_run.pk == victim.pk:
            raise ZeroDivisionError(f"injected into {step}")
        return real(dag_run=dag_run, **kwargs)

    monkeypatch.setattr(steps, step, step_that_raises)


class SchedulerLoopTests:
    @pytest.mark.parametrize("step", STEPS)
    def test_it_carries_on_with_the_other_runs_when_a_step_raises(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   step: str, caplog: pytest.LogCaptureFixture) -> None:
        victim = make_run(tmp_path, TWO_STEPS, dag_id="two_steps")
        other = create_dag_run(dag_id="two_steps", logical_date=timezone.now())
        poisoned(monkeypatch, step, victim)
        scheduler = Scheduler(executor=InlineExecutor())

        scheduler.run_once()  # must not raise

        assert states(other, "make") == {-1: "queued"}
        assert f"Scheduling DagRun id={victim.pk} failed" in caplog.text or "Naming instances of run" in caplog.text
        assert "injected into" in caplog.text

    def test_it_keeps_the_expansion_when_naming_raises(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        run = make_run(tmp_path, TWO_STEPS, dag_id="two_steps")
        record_length(run, "make", 2)
        XCom.objects.create(dag_run=run, task_id="make", map_index=-1, key="return_value", value=[1, 2])
        poisoned(monkeypatch, "name_mapped_instances", run)

        Scheduler(executor=InlineExecutor()).run_once()

        assert states(run, "add") == {0: "queued", 1: "queued"}
