"""Example DAGs through the real stack: a scheduler and a Celery worker as subprocesses, over Redis.

Each test starts its stack once and runs several DAGs on it, since starting a worker costs more
than running a small DAG.
"""

from __future__ import annotations

import io
import json
import os
import socket
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from runs.cli import wait_for_dag_run
from runs.logs import read_log
from runs.models import DagImportError, DagModel, DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from tests.conftest import LiveStack

pytestmark = pytest.mark.django_db(transaction=True)

RUN_TIMEOUT_SEC = 60.0


def results(run: DagRun, task_id: str) -> list[tuple[int, str, int]]:
    """(map_index, state, try_number) of one task's instances."""
    return list(TaskInstance.objects.filter(dag_run=run, task_id=task_id).order_by("map_index")
                .values_list("map_index", "state", "try_number"))


def return_values(run: DagRun, task_id: str) -> list[Any]:
    return list(run.xcoms.filter(task_id=task_id, key="return_value").order_by("map_index").values_list("value", flat=True))


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, stack: LiveStack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{stack.report()}")


class ExampleDagsOnTheLiveStackTests:
    def test_it_runs_example_add_in_the_worker(self, live_stack: Callable[..., LiveStack]) -> None:
        # Parsed here rather than waited for: the scheduler's own parse on start finds the same hashes.
        process_dags_folder()
        stack = live_stack()
        out = io.StringIO()
        call_command("dags", "trigger", "example_add", "--wait", "--json", "--timeout", str(RUN_TIMEOUT_SEC), stdout=out)
        summary = json.loads(out.getvalue())
        assert summary["state"] == "success", stack.report()
        assert [(t["task_id"], t["map_index"], t["return_value"]) for t in summary["task_instances"]] == [
            ("add", 0, 11), ("add", 1, 12), ("add", 2, 13), ("total", -1, 36),
        ]
        run = DagRun.objects.get(dag_id="example_add", run_id=summary["run_id"])
        for ti in TaskInstance.objects.filter(dag_run=run):
            # Ran in the worker's pool processes, not here.
            assert ti.hostname == socket.gethostname()
            assert ti.pid is not None and ti.pid != os.getpid()
            assert ti.pid not in {p.pid for p in stack.processes.values()}
            assert ti.start_date is not None and ti.end_date is not None and ti.duration is not None
        add_1 = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=1)
        log, _ = read_log(add_1.pk, 1)
        assert "adding 2 + 10" in log
        assert "Marking task as SUCCESS" in log
        assert "runs.run_task_instance" in stack.output("worker")

    def test_it_runs_several_examples_side_by_side(self, live_stack: Callable[..., LiveStack]) -> None:
        process_dags_folder()
        stack = live_stack(concurrency=4)
        dag_ids = ["example_cross_product", "example_mapped_task_group", "example_retry_one_index",
                   "example_empty_expansion", "example_elt", "example_item_identity"]
        runs = {d: create_dag_run(dag_id=d) for d in dag_ids}
        for dag_id, run in runs.items():
            runs[dag_id] = wait_for_dag_run(run, timeout=RUN_TIMEOUT_SEC)
            assert runs[dag_id].state == "success", f"{dag_id}\n{stack.report()}"

        cross = runs["example_cross_product"]
        assert return_values(cross, "add") == [7, 12, 9, 14, 13, 18]
        assert return_values(cross, "total") == [73]

        group = runs["example_mapped_task_group"]
        assert return_values(group, "forecast.label") == ["oslo: 5 C", "lima: 20 C", "cairo: 35 C"]
        assert return_values(group, "hottest") == ["cairo: 35 C"]

        retry = runs["example_retry_one_index"]
        assert results(retry, "flaky") == [(0, "success", 1), (1, "success", 1), (2, "success", 2),
                                           (3, "success", 1), (4, "success", 1)]
        flaky = TaskInstance.objects.get(dag_run=retry, task_id="flaky", map_index=2)
        first_try, _ = read_log(flaky.pk, 1)
        assert "simulated transient failure" in first_try
        assert return_values(retry, "total") == [30]

        empty = runs["example_empty_expansion"]
        assert results(empty, "process") == [(-1, "skipped", 0)]
        assert results(empty, "summarize") == [(-1, "skipped", 0)]
        assert results(empty, "report") == [(-1, "success", 1)]

        elt = runs["example_elt"]
        assert return_values(elt, "load") == [2, 3, 2]
        assert return_values(elt, "transform") == [{"rows": 7, "by_region": {"north": 210, "south": 275, "web": 300}}]
        assert not Path(return_values(elt, "cleanup")[0]).exists()

        identity = runs["example_item_identity"]
        assert return_values(identity, "price") == [20, 10, 50]
        assert return_values(identity, "total") == [80]
        assert list(TaskInstance.objects.filter(dag_run=identity, task_id="price").order_by("map_index")
                    .values_list("item_identity", flat=True)) == ["A-1:2", "B-7:1", "C-3:5"]

    def test_it_tolerates_failures_of_a_mapped_task_and_a_mapped_group(self, live_stack: Callable[..., LiveStack]) -> None:
        process_dags_folder()
        stack = live_stack()
        run = wait_for_dag_run(create_dag_run(dag_id="example_tolerated_failures"), timeout=RUN_TIMEOUT_SEC)
        assert run.state == "success", stack.report()
        fetch = results(run, "fetch")
        # Pages 7 and 13 (indexes 6 and 12) failed after their retry; the others succeeded at once.
        assert [(i, s, t) for i, s, t in fetch if s != "success"] == [(6, "failed", 2), (12, "failed", 2)]
        assert len(fetch) == 20 and {t for _, s, t in fetch if s == "success"} == {1}
        # The reduce got the 18 results only: failed indexes are absent, not None.
        assert return_values(run, "count_words") == [{"pages": 18, "words": 1900}]
        assert results(run, "check.validate") == [(0, "success", 1), (1, "success", 1), (2, "failed", 1)]
        assert return_values(run, "report") == [30]


GOOD_DAG = """
from datetime import datetime
from dagsapp.sdk import dag, task

@dag(dag_id="e2e_good", start_date=datetime(2024, 1, 1), schedule=None)
def e2e_good():
    @task
    def square(x):
        return x * x

    @task
    def total(values):
        return sum(values)

    total(square.expand(x=[1, 2, 3]))

e2e_good()
"""

BROKEN_DAG = """
from dagsapp.sdk import DAG

def build():
    return undefined_name_in_dag_file

with DAG("e2e_broken"):
    build()
"""


class DagImportErrorOnTheLiveStackTests:
    def test_it_runs_the_good_dag_and_records_the_broken_file(self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        folder = tmp_path / "dags"
        folder.mkdir()
        (folder / "good.py").write_text(textwrap.dedent(GOOD_DAG))
        broken = folder / "broken.py"
        broken.write_text(textwrap.dedent(BROKEN_DAG))
        stack = live_stack(dags_folder=folder)
        # This time the scheduler's own parse on start is what stores both outcomes.
        wait_until(lambda: DagModel.objects.filter(dag_id="e2e_good", is_active=True).exists()
                   and DagImportError.objects.filter(filename=str(broken)).exists(),
                   timeout=30, what="the scheduler to parse the DAG folder", stack=stack)
        error = DagImportError.objects.get(filename=str(broken))
        assert "Traceback" in error.stacktrace
        assert "NameError" in error.stacktrace and "undefined_name_in_dag_file" in error.stacktrace
        assert str(broken) in error.stacktrace
        assert not DagModel.objects.filter(dag_id="e2e_broken").exists()

        run = wait_for_dag_run(create_dag_run(dag_id="e2e_good"), timeout=RUN_TIMEOUT_SEC)
        assert run.state == "success", stack.report()
        assert return_values(run, "square") == [1, 4, 9]
        assert return_values(run, "total") == [14]
