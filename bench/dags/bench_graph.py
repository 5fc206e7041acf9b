"""Benchmark 6: a 50-task DAG with 10 mapped tasks, for the Graph view (cold and cached layout).

Ten branches of source -> mapped work -> aggregate -> check -> publish, each aggregate also
waiting for the previous branch's, so the layout has crossing edges to route.
"""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import dag, task


@dag(dag_id="bench_graph", start_date=datetime(2024, 1, 1), schedule=None, tags=["bench"])
def bench_graph() -> None:
    @task
    def source() -> list[int]:
        return [1, 2, 3]

    @task
    def work(x: int) -> int:
        return x

    @task
    def aggregate(values: list[int]) -> int:
        return sum(values)

    @task
    def check(value: int) -> int:
        return value

    @task
    def publish(value: int) -> None:
        print(value)

    previous = None
    for i in range(10):
        agg = aggregate.override(task_id=f"aggregate_{i}")(work.override(task_id=f"work_{i}").expand(x=source.override(task_id=f"source_{i}")()))
        if previous is not None:
            previous >> agg
        publish.override(task_id=f"publish_{i}")(check.override(task_id=f"check_{i}")(agg))
        previous = agg


bench_graph()
