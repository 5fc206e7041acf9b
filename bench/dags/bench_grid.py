"""Benchmark 4: three DAGs of the same shape, 10 tasks of which 5 are mapped, for the Grid view.

The benchmark never runs them: it inserts their runs and task instances in bulk (1,000, 10,000
and 100,000 instances per mapped task) and times the page.
"""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import dag, task


def grid_dag(dag_id: str) -> None:
    @dag(dag_id=dag_id, start_date=datetime(2024, 1, 1), schedule=None, tags=["bench"])
    def shape() -> None:
        @task
        def source() -> list[int]:
            return [1, 2, 3]

        @task
        def work(x: int) -> int:
            return x

        @task
        def summarize(values: list[int]) -> int:
            return sum(values)

        items = source()
        mapped = [work.override(task_id=f"work_{i}").expand(x=items) for i in range(5)]
        for i in range(4):
            summarize.override(task_id=f"summarize_{i}")(mapped[i])

    shape()


grid_dag("bench_grid_small")
grid_dag("bench_grid_large")
grid_dag("bench_grid_huge")
# Running runs of the same shape (benchmark live_grid): the Grid reads their live counts.
grid_dag("bench_live_small")
grid_dag("bench_live_huge")
