"""The peers' benchmark in Apache Airflow 2.10: the same 1,000-instance map as bench_throughput."""
from __future__ import annotations

import os
from datetime import datetime

from airflow.decorators import dag, task

N = int(os.environ.get("BENCH_PEER_N", "1000"))


@dag(dag_id="bench_peer_map", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def bench_peer_map() -> None:
    @task
    def numbers() -> list[int]:
        return list(range(N))

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(add.partial(y=10).expand(x=numbers()))


bench_peer_map()
