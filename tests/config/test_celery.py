"""The Celery app as the worker runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs.cli import wait_for_dag_run
from runs.models import XCom
from tests.runs.factories import make_run

# Each instance reports the PostgreSQL backend its worker process talks to.
BACKEND_PIDS = """
@task
def backend_pid(i):
    from django.db import connection
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]

with DAG("backend_pids") as the_dag:
    backend_pid.expand(i=list(range(6)))
"""


class WorkerConnectionTests:
    @pytest.mark.django_db(transaction=True)
    def test_it_keeps_one_database_connection_across_task_messages(self, live_stack, tmp_path: Path) -> None:
        # Celery's Django fix-up would open a new connection for every message (a fifth of the
        # time of a small instance); one worker process must reuse its connection instead.
        run = make_run(tmp_path, BACKEND_PIDS, dag_id="backend_pids")
        live_stack(dags_folder=tmp_path, concurrency=1)

        assert wait_for_dag_run(run, timeout=60).state == "success"

        pids = list(XCom.objects.filter(dag_run=run, task_id="backend_pid").values_list("value", flat=True))
        assert len(pids) == 6
        assert len(set(pids)) == 1
