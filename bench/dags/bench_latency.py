"""Benchmark 3: a mapped task group of 11 chained no-op tasks over 2 items (one per worker process).

Depth-first, so each of the 10 links x 2 indexes is one sample of "upstream instance succeeded ->
downstream instance started": 20 samples per run, with no queue of other work in between.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from dagsapp.sdk import dag, task, task_group

DEPTH = 11


@dag(dag_id="bench_latency", start_date=datetime(2024, 1, 1), schedule=None, tags=["bench"])
def bench_latency() -> None:
    @task
    def step(x: int) -> int:
        return x

    @task_group
    def chain(x: int) -> Any:
        value = x
        for i in range(DEPTH):
            value = step.override(task_id=f"step_{i:02d}")(value)
        return value

    chain.expand(x=[0, 1])


bench_latency()
