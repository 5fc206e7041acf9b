"""Mapping over two keywords makes the cross product: 3 x 2 = 6 instances, last keyword varying fastest.

``add.expand(x=[2, 4, 8], y=[5, 10])`` runs ``add`` for (2, 5), (2, 10), (4, 5), (4, 10), (8, 5),
(8, 10), in ``itertools.product`` order, and ``total`` reduces the six results to 73.
"""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import dag, task


@dag(dag_id="example_cross_product", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_cross_product() -> None:
    @task
    def add(x: int, y: int) -> int:
        print(f"{x} + {y} = {x + y}")
        return x + y

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(add.expand(x=[2, 4, 8], y=[5, 10]))


example_cross_product()
