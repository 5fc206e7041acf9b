"""A grid search: one instance per (learning_rate, depth), then the best one is published.

``train.expand(learning_rate=[...], depth=[...])`` makes 3 x 3 instances, named by
``map_index_template`` (``lr=0.1 depth=4``) instead of bare indexes. Each computes a
deterministic score; ``pick_best`` returns the best combination and also pushes it under the
XCom key ``best``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from dagsapp.sdk import dag, task


def score(learning_rate: float, depth: int) -> float:
    # A made-up validation score with one peak at lr=0.1, depth=4: pure Python, so every run agrees.
    return round(1.0 - 10 * (learning_rate - 0.1) ** 2 - 0.01 * (depth - 4) ** 2, 4)


@dag(dag_id="example_hyperparameter_search", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_hyperparameter_search() -> None:
    @task(map_index_template="lr={{ task.op_kwargs['learning_rate'] }} depth={{ task.op_kwargs['depth'] }}")
    def train(learning_rate: float, depth: int) -> dict[str, Any]:
        result = {"learning_rate": learning_rate, "depth": depth, "score": score(learning_rate, depth)}
        print(f"trained: {result}")
        return result

    @task
    def pick_best(results: list[dict[str, Any]], ti: Any) -> dict[str, Any]:
        best = max(results, key=lambda r: r["score"])
        print(f"best of {len(results)}: {best}")
        ti.xcom_push(key="best", value=best)
        return best

    pick_best(train.expand(learning_rate=[0.01, 0.1, 0.3], depth=[2, 4, 8]))


example_hyperparameter_search()
