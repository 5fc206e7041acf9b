"""Tolerated failures: a downstream runs over the items that worked, as long as few enough failed.

``fetch`` is mapped over 20 pages with ``partial(max_failed_ratio=0.1)``: up to 10 % of its
instances may fail (after their retries) and its downstream still sees it as successful. Pages 7
and 13 always fail (a simulated 404), so ``fetch`` ends "18 of 20 succeeded, 2 failures
tolerated" and ``count_words`` receives the 18 results only (failed indexes are absent, not None).

The mapped task group ``check`` is tolerant over its indexes with ``max_failed_count=1``: the
region whose ``validate`` fails makes its group index failed; one is tolerated, so ``report``
runs over the two others and the run succeeds. One more failure would make ``report``
upstream_failed and fail the run, as without a tolerance.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from dagsapp.sdk import dag, task, task_group

MISSING_PAGES = {7, 13}
ROWS = {"north": 10, "south": 20, "east": -1}


@dag(dag_id="example_tolerated_failures", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_tolerated_failures() -> None:
    @task
    def fetch(page: int) -> int:
        if page in MISSING_PAGES:
            raise RuntimeError(f"page {page}: 404 Not Found (simulated)")
        return page * 10  # the words on the page

    @task
    def count_words(words: list[int]) -> dict[str, int]:
        return {"pages": len(words), "words": sum(words)}

    @task
    def extract(region: str) -> dict[str, Any]:
        return {"region": region, "rows": ROWS[region]}

    @task
    def validate(batch: dict[str, Any]) -> int:
        if batch["rows"] < 0:
            raise ValueError(f"{batch['region']}: negative row count {batch['rows']}")
        return int(batch["rows"])

    @task_group
    def check(region: str) -> Any:
        return validate(extract(region))

    @task
    def report(rows: list[int]) -> int:
        return sum(rows)

    count_words(fetch.partial(retries=1, retry_delay=0, max_failed_ratio=0.1).expand(page=list(range(1, 21))))
    report(check.partial(max_failed_count=1).expand(region=["north", "south", "east"]))


example_tolerated_failures()
