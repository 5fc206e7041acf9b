"""Hostile DAG files and templates on the real stack: the rest of the system carries on."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.dag_sources import CANARY, HOSTILE_FILES
from tests.faults.harness import Stack, wait_until

IMPORTS = "from dagsapp.sdk import DAG, EmptyOperator, task\n"

NAMES_RAISE = IMPORTS + """
@task(map_index_template="{{ 100 // mapping.value }}%")
def percent(v):
    return v

with DAG("names_raise") as the_dag:
    percent.expand(v=[0, 0, 0])
"""

PLAIN = IMPORTS + """
@task
def add(x):
    return x + 1

with DAG("plain") as the_dag:
    add.expand(x=[1, 2, 3])
"""


class HostileDagFolderTests:
    def test_it_registers_and_runs_a_canary_beside_every_hostile_file(self, make_stack: Callable[..., Stack]) -> None:
        stack = make_stack(DAG_FILE_PROCESSOR_TIMEOUT="5")
        for kind, (source, _message) in HOSTILE_FILES.items():
            stack.write_dag(f"{kind}.py", IMPORTS + source)
        stack.write_dag("canary.py", IMPORTS + CANARY)
        stack.start_worker()
        started = time.monotonic()
        stack.start_scheduler()  # and the DAG processor

        stack.wait_for_dag("canary", timeout=10)
        run_id = stack.trigger("canary")
        assert stack.wait_for_run(run_id, timeout=10) == "success"
        registered_and_ran = time.monotonic() - started

        def all_errors() -> list[dict[str, str]] | None:
            rows = stack.query("SELECT filename, stacktrace FROM runs_dagimporterror")
            return rows if len(rows) == len(HOSTILE_FILES) - 1 else None  # writes_to_fd_1 is a good file

        errors = wait_until(all_errors, timeout=30, what="an import error per hostile file")
        by_file = {r["filename"].rsplit("/", 1)[-1]: r["stacktrace"] for r in errors}
        for kind, (_source, message) in HOSTILE_FILES.items():
            if message is not None:
                assert message.replace("3 s", "5 s") in by_file[f"{kind}.py"], (kind, by_file.get(f"{kind}.py"))
        assert stack.processes["scheduler"].poll() is None and stack.processes["dag_processor"].poll() is None
        print(f"canary registered and ran {registered_and_ran:.1f} s after the processes started")


class HostileNameTemplateTests:
    def test_it_keeps_scheduling_other_runs_while_one_runs_names_raise(self, make_stack: Callable[..., Stack]) -> None:
        stack = make_stack()
        stack.write_dag("names_raise.py", NAMES_RAISE)
        stack.write_dag("plain.py", PLAIN)
        stack.start_scheduler()
        stack.start_worker()
        stack.wait_for_dag("names_raise")
        stack.wait_for_dag("plain")

        hostile = stack.trigger("names_raise")
        plain = stack.trigger("plain")

        assert stack.wait_for_run(plain, timeout=60) == "success"
        assert stack.wait_for_run(hostile, timeout=60) == "success"
        names = [ti for ti in stack.query("SELECT ti.rendered_map_index FROM runs_taskinstance ti JOIN runs_dagrun r"
                                          " ON r.id = ti.dag_run_id WHERE r.run_id = %s", [hostile])]
        assert [n["rendered_map_index"] for n in names] == [None, None, None]
        assert stack.processes["scheduler"].poll() is None
        assert "ZeroDivisionError" in stack.output("scheduler")
