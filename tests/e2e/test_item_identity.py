"""Stable item identity on the real stack: a scheduler and a Celery worker as subprocesses.

The upstream's list changes between two passes of one run; "clear only new, changed and failed"
re-runs exactly the new, changed and failed items, and the others keep their first success.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runs.cli import wait_for_dag_run
from runs.logs import read_log
from runs.models import TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import clear_mapped_task_changed, clear_task_instances, create_dag_run
from runs.web.queries import item_changes
from tests.conftest import LiveStack
from tests.e2e.test_examples import RUN_TIMEOUT_SEC, results, return_values

pytestmark = pytest.mark.django_db(transaction=True)


class ItemIdentityOnTheLiveStackTests:
    def test_it_reruns_only_new_changed_and_failed_orders(self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        process_dags_folder()
        stack = live_stack()
        orders = tmp_path / "orders.json"
        orders.write_text(json.dumps([{"id": "A", "qty": 2}, {"id": "B", "qty": 1}, {"id": "C", "qty": -1}]))
        run = wait_for_dag_run(create_dag_run(dag_id="example_item_identity", conf={"orders_file": str(orders)}),
                               timeout=RUN_TIMEOUT_SEC)
        assert run.state == "failed", stack.report()
        assert results(run, "price") == [(0, "success", 1), (1, "success", 1), (2, "failed", 1)]
        first_b = TaskInstance.objects.get(dag_run=run, task_id="price", map_index=1)
        assert first_b.item_identity == "B:1"  # the DAG's map_key: id and quantity, not fetched_at

        # B's quantity changes, C is fixed, D is new; A is fetched again (a new fetched_at) but is the same order.
        orders.write_text(json.dumps([{"id": "A", "qty": 2}, {"id": "B", "qty": 3}, {"id": "C", "qty": 5}, {"id": "D", "qty": 1}]))
        clear_task_instances(dag_run=run, task_id="list_orders", map_indexes=[-1])
        clear_mapped_task_changed(dag_run=run, task_id="price", downstream=True)
        run = wait_for_dag_run(run, timeout=RUN_TIMEOUT_SEC)

        assert run.state == "success", (results(run, "price"), results(run, "total"), results(run, "list_orders"))
        assert results(run, "price") == [(0, "success", 1), (1, "success", 2), (2, "success", 2), (3, "success", 1)]
        assert return_values(run, "price") == [20, 30, 50, 10]
        assert return_values(run, "total") == [110]
        assert str(item_changes(run, "price")) == "1 unchanged, 1 new, 2 changed, 0 removed"
        b = TaskInstance.objects.get(dag_run=run, task_id="price", map_index=1)
        first_try, _ = read_log(b.pk, 1)
        second_try, _ = read_log(b.pk, 2)
        assert "Item identity: B:1" in first_try and "pricing B: 1 x 10" in first_try
        assert "now stands for item B:3; the tries so far ran item B:1" in first_try
        assert "Item identity: B:3" in second_try and "pricing B: 3 x 10" in second_try
