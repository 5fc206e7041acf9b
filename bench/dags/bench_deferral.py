"""Benchmark 9: N instances deferred at once on one triggerer, each a 5 s TimeDeltaTrigger that
ends its instance from the triggerer (``end_from_trigger``: a TaskSuccessEvent, no worker).

``make_waits`` returns N trigger_kwargs (``conf["n"]``, ``conf["delta"]``); the mapped sensor starts
each index straight from its trigger (``start_from_trigger``), decided by the scheduler in bulk.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from dagsapp.sdk import TimeDeltaSensor, dag, get_current_context, task


@dag(dag_id="bench_deferral", start_date=datetime(2024, 1, 1), schedule=None, tags=["bench"], params={"n": 10, "delta": 5})
def bench_deferral() -> None:
    @task
    def make_waits() -> list[dict[str, Any]]:
        params = get_current_context()["params"]
        return [{"delta": float(params["delta"]), "end_from_trigger": True}] * int(params["n"])

    TimeDeltaSensor.partial(task_id="wait", start_from_trigger=True, max_map_length=100_000).expand(trigger_kwargs=make_waits())


bench_deferral()
