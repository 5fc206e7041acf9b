"""``expand_kwargs`` (one instance per dict) and the ``XComArg`` helpers ``map``, ``zip`` and ``concat``.

- ``send_email.expand_kwargs(recipients())``: the dicts come from an upstream task at run time.
- ``copy_file.expand_kwargs([...])``: the dicts are literals in the DAG file.
- ``multiply.expand(pair=numbers().zip(factors()))``: pairs ``(1, 10), (2, 20), (3, 30)``.
- ``multiply_kwargs.expand_kwargs(numbers().zip(factors()).map(...))``: the same pairs, turned into
  dicts by a function that runs per item in the worker.
- ``describe.expand(value=numbers().concat(factors()))``: one instance per item of both lists.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from dagsapp.sdk import dag, task


def pair_to_kwargs(pair: Any) -> dict[str, int]:
    return {"a": pair[0], "b": pair[1]}


@dag(dag_id="example_expand_kwargs", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_expand_kwargs() -> None:
    @task
    def recipients() -> list[dict[str, str]]:
        return [
            {"to": "ada@example.com", "subject": "Report"},
            {"to": "grace@example.com", "subject": "Invoice"},
        ]

    @task
    def send_email(to: str, subject: str) -> str:
        print(f"sending {subject!r} to {to}")
        return f"{subject} -> {to}"

    @task
    def copy_file(src: str, dst: str) -> str:
        return f"{src} => {dst}"

    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @task
    def factors() -> list[int]:
        return [10, 20, 30]

    @task
    def multiply(pair: list[int]) -> int:
        return pair[0] * pair[1]

    @task
    def multiply_kwargs(a: int, b: int) -> int:
        return a * b

    @task
    def describe(value: int) -> str:
        return f"value={value}"

    @task
    def total(products: list[int]) -> int:
        return sum(products)

    send_email.expand_kwargs(recipients())
    copy_file.expand_kwargs([
        {"src": "a.csv", "dst": "archive/a.csv"},
        {"src": "b.csv", "dst": "archive/b.csv"},
        {"src": "c.csv", "dst": "archive/c.csv"},
    ])
    nums, facs = numbers(), factors()
    total(multiply.expand(pair=nums.zip(facs)))
    multiply_kwargs.expand_kwargs(nums.zip(facs).map(pair_to_kwargs))
    describe.expand(value=nums.concat(facs))


example_expand_kwargs()
