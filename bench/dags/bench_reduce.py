"""Benchmarks 5, 7 and 8: one run whose mapped task has 100,000 instances (inserted in bulk).

``total`` sums the 100,000 results through the lazy sequence; ``empty`` is the baseline task
for the memory figure; ``item``'s instances feed the mapped instances table and the log read.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from dagsapp.sdk import dag, task


@dag(dag_id="bench_reduce", start_date=datetime(2024, 1, 1), schedule=None, tags=["bench"])
def bench_reduce() -> None:
    @task
    def produce() -> list[int]:
        return [1, 2, 3]

    @task
    def item(x: int) -> int:
        return x

    @task
    def total(values: Any) -> int:
        return sum(values)

    @task
    def empty() -> int:
        return 0

    total(item.expand(x=produce()))
    empty()


bench_reduce()
