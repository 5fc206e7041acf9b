"""The peers' benchmark in Apache Airflow (2.10 and 3.3): the same map as bench_throughput.

An upstream returns N items (N from the run's conf, ``{"n": N}``, as in ours), a no-op mapped
task ``add.partial(y=10).expand(x=...)``, and a reduce. The default N comes from
``BENCH_PEER_N`` so a plain trigger or ``dags test`` without conf runs the usual 1,000.
"""
from __future__ import annotations

import os
from datetime import datetime
from typing import Any

try:  # Airflow 3: the Task SDK
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.10
    from airflow.decorators import dag, task

N = int(os.environ.get("BENCH_PEER_N", "1000"))


@dag(dag_id="bench_peer_map", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, params={"n": N})
def bench_peer_map() -> None:
    @task
    def numbers(**context: Any) -> list[int]:
        return list(range(int(context["params"]["n"])))

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(add.partial(y=10).expand(x=numbers()))


bench_peer_map()
