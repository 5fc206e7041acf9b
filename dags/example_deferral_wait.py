"""Mapped waits that start in the triggerer: the seed article's pattern, in seconds instead of hours.

Each index hands its wait to the triggerer as soon as it is scheduled, without ever taking a
worker slot (``start_from_trigger``), with its own ``trigger_kwargs``: literals for the first
task, an upstream task's result for the second (resolved per index by the scheduler).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dagsapp.sdk import DAG, BaseSensorOperator, StartTriggerArgs, task


class WaitSecondsSensor(BaseSensorOperator):
    start_trigger_args = StartTriggerArgs(
        trigger_cls="dagsapp.triggers.TimeDeltaTrigger",
        trigger_kwargs={"delta": timedelta(seconds=1)},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )
    start_from_trigger = True

    def __init__(self, *args: Any, trigger_kwargs: dict[str, Any] | None, start_from_trigger: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_trigger_args.trigger_kwargs = trigger_kwargs  # type: ignore[union-attr]
        self.start_from_trigger = start_from_trigger

    def execute_complete(self, context: dict[str, Any], event: Any = None) -> None:
        print(f"waited until {event}")
        return


with DAG("example_deferral_wait", start_date=datetime(2024, 1, 1), schedule=None, tags=["example", "deferral"]) as dag:
    WaitSecondsSensor.partial(task_id="wait_for_n_seconds", start_from_trigger=True).expand(
        trigger_kwargs=[{"delta": timedelta(seconds=2)}, {"delta": timedelta(seconds=4)}]
    )

    @task
    def list_waits() -> list[dict[str, Any]]:
        return [{"delta": n} for n in (1, 2, 3)]

    WaitSecondsSensor.partial(task_id="wait_per_upstream_item", start_from_trigger=True).expand(trigger_kwargs=list_waits())
