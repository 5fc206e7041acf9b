"""A mapped task group: the three tasks inside run once per city, depth-first.

``forecast.expand(city=[...])`` maps the whole group, so ``fetch[i] -> convert[i] -> label[i]``
is a chain per index: ``convert[0]`` waits only for ``fetch[0]``, not for every ``fetch``.
``hottest`` reduces the group's output (one label per city).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from dagsapp.sdk import dag, task, task_group

TEMPERATURES_F = {"oslo": 41, "lima": 68, "cairo": 95}


@dag(dag_id="example_mapped_task_group", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_mapped_task_group() -> None:
    @task
    def fetch(city: str) -> dict[str, Any]:
        return {"city": city, "fahrenheit": TEMPERATURES_F[city]}

    @task
    def convert(reading: dict[str, Any]) -> dict[str, Any]:
        return {**reading, "celsius": round((reading["fahrenheit"] - 32) * 5 / 9)}

    @task
    def label(reading: dict[str, Any]) -> str:
        return f"{reading['city']}: {reading['celsius']} C"

    @task_group
    def forecast(city: str) -> Any:
        return label(convert(fetch(city)))

    @task
    def hottest(labels: list[str]) -> str:
        return max(labels, key=lambda s: int(s.split(": ")[1].split()[0]))

    hottest(forecast.expand(city=["oslo", "lima", "cairo"]))


example_mapped_task_group()
