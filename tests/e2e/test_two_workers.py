"""A deployment over several machines, on one: two Celery workers with their own host names and
their own working directories (no var/ in common with each other or with the web server), and
every instance's log and result read through the web server's API, whichever worker ran it."""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from config import celery_app
from runs.cli import wait_for_dag_run
from runs.models import TaskInstance
from runs.processes import BASE_DIR, worker_answers, worker_argv
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from runs.web.api_v2.auth import issue_token
from tests.conftest import LiveStack, make_user

pytestmark = pytest.mark.django_db(transaction=True)

N = 8
DAG = f"""\
from __future__ import annotations
import time
from datetime import datetime
from dagsapp.sdk import dag, task


@dag(dag_id="spread", start_date=datetime(2024, 1, 1), schedule=None)
def spread():
    @task
    def work(i: int) -> str:
        time.sleep(0.3)  # long enough that both workers take some
        print(f"working on {{i}}")
        return f"done {{i}}"

    work.expand(i=list(range({N})))


spread()
"""


def get_json(url: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)  # type: ignore[no-any-return]


class TwoWorkersOnTwoHostsTests:
    def test_it_reads_every_instances_log_and_result_from_the_web_server_whichever_worker_ran_it(
            self, live_server: object, live_stack: Callable[..., LiveStack], tmp_path: Path) -> None:
        dags = tmp_path / "dags"
        dags.mkdir()
        (dags / "spread.py").write_text(DAG)
        process_dags_folder(dags)
        stack = live_stack(dags_folder=dags, worker=False)
        for host in ("host-a", "host-b"):
            workdir = tmp_path / host
            (workdir / "var").mkdir(parents=True)
            node = f"w@{host}"
            env = {**stack.env, "DAGSAPP_HOSTNAME": host, "VAR_DIR": str(workdir / "var"),
                   "PROMETHEUS_MULTIPROC_DIR": str(workdir / "var" / "prometheus"),
                   # The code comes from the image (here: the checkout), the state from nowhere local.
                   "PYTHONPATH": str(BASE_DIR)}
            process = stack.start(host, worker_argv(concurrency=1, queue=celery_app.conf.task_default_queue, node=node,
                                                    options=("--without-mingle", "--without-gossip")), env=env, cwd=workdir)
            assert worker_answers(celery_app.control, node=node, process=process, timeout=60), stack.report()

        run = wait_for_dag_run(create_dag_run(dag_id="spread", run_id="spread-1"), timeout=90)
        assert run.state == "success", stack.report()
        hosts = dict(TaskInstance.objects.filter(dag_run=run, task_id="work").values_list("map_index", "hostname"))
        assert set(hosts.values()) == {"host-a", "host-b"}
        # Nothing of a run lands in a worker's own directory: logs and results are in PostgreSQL.
        assert not list((tmp_path / "host-a" / "var").glob("**/*.log"))

        token = issue_token(make_user("reader", "Viewer"))
        base = f"{live_server.url}/api/v2/dags/spread/dagRuns/spread-1/taskInstances/work"  # type: ignore[attr-defined]
        for i in range(N):
            instance = get_json(f"{base}/{i}", token)
            assert instance["hostname"] == hosts[i]
            log = get_json(f"{base}/logs/1?map_index={i}", token)
            events = [m["event"] for m in log["content"]]  # type: ignore[index, union-attr]
            assert any(f"working on {i}" in e for e in events), events
            assert any(f"on {hosts[i]}" in e for e in events), events
            assert get_json(f"{base}/xcomEntries/return_value?map_index={i}", token)["value"] == f"done {i}"
