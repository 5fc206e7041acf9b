"""Mapping over a DAG param: ``expand(x=ParamRef("numbers"))``, overridable per run.

The DAG's ``params`` default ``numbers`` to ``[1, 2, 3]``; triggering with
``--conf '{"numbers": [5, 6]}'`` maps over ``[5, 6]`` instead. The number of instances is
decided when the run reaches the task, from that run's conf. ``numbers`` is a ``Param`` with a
JSON schema: the trigger form shows it as a JSON field with its description, and a conf that is
not a list of integers is refused before a run is created (from the form, the CLI or the API). (``VariableRef("name")`` works the
same way over a JSON Variable; it is not used here so that the example needs no setup.)
"""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import Param, ParamRef, dag, task


@dag(dag_id="example_conf_and_params", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"],
     params={"numbers": Param([1, 2, 3], type="array", items={"type": "integer"}, minItems=1, title="Numbers",
                              description="The numbers to double, one task instance each")})
def example_conf_and_params() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(double.expand(x=ParamRef("numbers")))


example_conf_and_params()
