"""Mapping over an empty list: zero instances, so the mapped task is skipped, not failed.

``find_files`` returns ``[]``. ``process`` is skipped; ``summarize`` (trigger rule
``all_success``) is skipped with it; ``report`` (``none_failed``) still runs, and the run
succeeds.
"""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import dag, task


@dag(dag_id="example_empty_expansion", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_empty_expansion() -> None:
    @task
    def find_files() -> list[str]:
        print("nothing arrived today")
        return []

    @task
    def process(path: str) -> str:
        return path.upper()

    @task
    def summarize(results: list[str]) -> int:
        return len(results)

    @task(trigger_rule="none_failed")
    def report() -> str:
        return "no failures"

    processed = process.expand(path=find_files())
    summarize(processed)
    processed >> report()


example_empty_expansion()
