"""A custom deferrable operator: wait for a row in a PostgreSQL table, with a trigger of our own
(``dags/_pg_row_trigger.py``, async psycopg), then use the row.

``create_table`` makes the table, ``insert_later`` adds the row a few seconds later, and
``WaitForRowOperator`` defers to ``PostgresRowTrigger`` meanwhile, freeing its worker slot. The
trigger's connection parameters include a password: the instance's Details show it masked.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from _pg_row_trigger import PostgresRowTrigger

from dagsapp.sdk import DAG, BaseOperator, task

TABLE = "example_partner_results"


def _conn_params() -> dict[str, Any]:
    # The worker's own database, for the example; a real DAG names its partner's connection.
    from django.db import connection

    params = connection.get_connection_params()
    keep = ("host", "port", "dbname", "user", "password")
    return {k: v for k, v in params.items() if k in keep and v not in (None, "")}


class WaitForRowOperator(BaseOperator):
    template_fields = ("key",)

    def __init__(self, *, key: str, poll_interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.poll_interval = poll_interval

    def execute(self, context: dict[str, Any]) -> None:
        self.defer(trigger=PostgresRowTrigger(_conn_params(), TABLE, self.key, self.poll_interval), method_name="row_arrived",
                   timeout=300)

    def row_arrived(self, context: dict[str, Any], event: Any = None) -> Any:
        print(f"row {event['key']} arrived: {event['payload']}")
        return event["payload"]


with DAG("example_postgres_trigger", start_date=datetime(2024, 1, 1), schedule=None, tags=["example", "deferral"]) as dag:

    @task
    def create_table() -> None:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key text PRIMARY KEY, payload jsonb)")

    @task
    def insert_later(run_id: str = "") -> None:
        from django.db import connection

        time.sleep(3)
        with connection.cursor() as cur:
            cur.execute(f"INSERT INTO {TABLE} (key, payload) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                        [run_id, '{"status": "done", "rows": 42}'])
        print(f"inserted the row for {run_id}")

    made = create_table()
    wait = WaitForRowOperator(task_id="wait_for_row", key="{{ run_id }}")
    made >> [insert_later(), wait]
