"""The classic: add 10 to each of three numbers in parallel, then sum the results."""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import dag, task


@dag(dag_id="example_add", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_add() -> None:
    @task
    def add(x: int, y: int) -> int:
        print(f"adding {x} + {y}")
        return x + y

    @task
    def total(values: list[int]) -> int:
        print(f"{len(values)} results to sum")
        return sum(values)

    total(add.partial(y=10).expand(x=[1, 2, 3]))


example_add()
