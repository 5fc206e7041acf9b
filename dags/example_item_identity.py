"""Stable item identity: after the upstream list changes, re-run only the items that changed.

``list_orders`` returns the orders to price: those in the JSON file named by the run's conf
(``{"orders_file": "/path/to/orders.json"}``), else three built-in ones. Each order carries a
``fetched_at`` time that differs on every fetch, so the default identity (a hash of the whole
item) would call every order changed; ``partial(map_key=...)`` says which fields make an order
the same order: its id and quantity.

Try it: trigger with an ``orders_file``, edit the file (change one quantity, add an order), clear
``list_orders``, then use "Clear only new, changed and failed" on ``price`` (with downstream).
Unchanged orders keep their success; the mapped panel reads "2 unchanged, 1 new, 1 changed,
0 removed", and a changed index's earlier try stays in its log, labelled with the old item.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from dagsapp.sdk import dag, get_current_context, task

BUILT_IN_ORDERS = [{"id": "A-1", "qty": 2}, {"id": "B-7", "qty": 1}, {"id": "C-3", "qty": 5}]
UNIT_PRICE = 10


def order_key(order: dict[str, Any]) -> str:
    """What makes two orders the same item: not fetched_at."""
    return f"{order['id']}:{order['qty']}"


@dag(dag_id="example_item_identity", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_item_identity() -> None:
    @task
    def list_orders() -> list[dict[str, Any]]:
        path = get_current_context()["dag_run"].conf.get("orders_file")
        orders = json.loads(Path(path).read_text()) if path else BUILT_IN_ORDERS
        return [{**order, "fetched_at": time.time()} for order in orders]

    @task(map_index_template="{{ task.op_kwargs['order']['id'] }}")
    def price(order: dict[str, Any]) -> int:
        if order["qty"] < 0:
            raise ValueError(f"order {order['id']} has a negative quantity")
        print(f"pricing {order['id']}: {order['qty']} x {UNIT_PRICE}")
        return order["qty"] * UNIT_PRICE

    @task
    def total(prices: list[int]) -> int:
        return sum(prices)

    total(price.partial(map_key=order_key).expand(order=list_orders()))


example_item_identity()
