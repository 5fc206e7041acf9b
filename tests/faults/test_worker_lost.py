"""A worker's pool processes killed with -9 while their instances run."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from tests.dag_sources import faults_sleepy
from tests.faults.harness import Stack, wait_until


class KilledWorkerTests:
    def test_it_retries_exactly_the_instances_whose_process_died(self, make_stack: Callable[..., Stack]) -> None:
        stack = make_stack()
        stack.write_dag("sleepy.py", faults_sleepy(retries=1))
        stack.start_scheduler()
        stack.start_worker(concurrency=4)
        stack.wait_for_dag("faults_sleepy")
        run_id = stack.trigger("faults_sleepy", conf={"n": 20, "seconds": 2})

        # Wait for a full wave of running instances, then kill -9 the pool processes running them.
        running = wait_until(lambda: [ti for ti in stack.task_instances(run_id, "work") if ti["state"] == "running"
                                      and ti["pid"] in stack.pool_children()][:2] if len(
            [ti for ti in stack.task_instances(run_id, "work") if ti["state"] == "running"]) >= 3 else None,
            timeout=30, interval=0.1, what="instances running")
        killed_at = time.monotonic()
        for ti in running:
            os.kill(ti["pid"], signal.SIGKILL)
        victims = {ti["map_index"] for ti in running}

        assert stack.wait_for_run(run_id, timeout=60) == "success", stack.describe(run_id)
        elapsed = time.monotonic() - killed_at
        work = stack.task_instances(run_id, "work")
        assert len(work) == 20
        assert all(ti["state"] == "success" for ti in work), stack.describe(run_id)
        tries = {ti["map_index"]: ti["try_number"] for ti in work}
        assert {i for i, t in tries.items() if t == 2} == victims, tries
        assert all(t == 1 for i, t in tries.items() if i not in victims), tries
        for ti in work:
            if ti["map_index"] in victims:
                first = stack.log_text(ti["id"], 1)
                assert "No heartbeat for more than 3 s" in first and "Marking UP_FOR_RETRY" in first, first
                assert stack.xcom(ti["id"]) == {"i": ti["map_index"], "try": 2}
            else:
                assert stack.xcom(ti["id"]) == {"i": ti["map_index"], "try": 1}
        assert stack.processes["worker"].poll() is None and stack.processes["scheduler"].poll() is None
        print(f"killed {sorted(victims)}; run finished {elapsed:.1f} s after the kill")
