"""Mapping over a DAG param: ``expand(x=ParamRef("numbers"))``, overridable per run.

The DAG's ``params`` default ``numbers`` to ``[1, 2, 3]``; triggering with
``--conf '{"numbers": [5, 6]}'`` maps over ``[5, 6]`` instead. The number of instances is
decided when the run reaches the task, from that run's conf. (``VariableRef("name")`` works the
same way over a JSON Variable; it is not used here so that the example needs no setup.)
"""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import ParamRef, dag, task


@dag(dag_id="example_conf_and_params", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"],
     params={"numbers": [1, 2, 3]})
def example_conf_and_params() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(double.expand(x=ParamRef("numbers")))


example_conf_and_params()
