"""Retries are per instance: index 2 fails its first try, is retried alone, and the run succeeds.

``flaky`` is mapped over five items with ``retries=1`` and a 1 s ``retry_delay``. Only the
instance for item 2 raises, and only on try 1 (``ti.try_number`` from ``get_current_context``);
the other four succeed at try 1 and are not run again. ``total`` waits for the retry.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from dagsapp.sdk import dag, get_current_context, task

FLAKY_ITEM = 2


@dag(dag_id="example_retry_one_index", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_retry_one_index() -> None:
    @task
    def flaky(n: int) -> int:
        ti = get_current_context()["ti"]
        if n == FLAKY_ITEM and ti.try_number == 1:
            raise RuntimeError(f"item {n}: simulated transient failure on try {ti.try_number}")
        print(f"item {n} ok on try {ti.try_number}")
        return n * n

    @task
    def total(squares: list[int]) -> int:
        return sum(squares)

    total(flaky.partial(retries=1, retry_delay=timedelta(seconds=1)).expand(n=[0, 1, 2, 3, 4]))


example_retry_one_index()
