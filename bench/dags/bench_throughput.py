"""Benchmark 1: an upstream returning N items (N from the run's conf), a no-op mapped task, a reduce."""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import dag, get_current_context, task


@dag(dag_id="bench_throughput", start_date=datetime(2024, 1, 1), schedule=None, tags=["bench"], params={"n": 100})
def bench_throughput() -> None:
    @task
    def numbers() -> list[int]:
        return list(range(int(get_current_context()["params"]["n"])))

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(add.partial(y=10).expand(x=numbers()))


bench_throughput()
