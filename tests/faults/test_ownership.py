"""A try belongs to one process: clearing it stops it, a redelivered message does not run it twice."""

from __future__ import annotations

import time
from collections.abc import Callable

from kombu import Connection

from tests.dag_sources import faults_sleepy
from tests.faults.harness import Stack, wait_until

RECEIVED = "Task runs.run_task_instance"  # either task: one id or a batch


class ClearWhileRunningTests:
    def test_it_stops_the_old_try_and_keeps_only_the_new_result(self, make_stack: Callable[..., Stack]) -> None:
        stack = make_stack()
        stack.write_dag("sleepy.py", faults_sleepy(retries=0))
        stack.start_scheduler()
        stack.start_worker(concurrency=4)
        stack.wait_for_dag("faults_sleepy")
        run_id = stack.trigger("faults_sleepy", conf={"n": 3, "seconds": 6})

        def running_index_1() -> dict | None:
            ti = next((t for t in stack.task_instances(run_id, "work") if t["map_index"] == 1), None)
            return ti if ti is not None and ti["state"] == "running" and "sleeping" in stack.log_text(ti["id"], 1) else None

        ti = wait_until(running_index_1, timeout=30, interval=0.1, what="work[1] to be running")
        cleared = time.monotonic()  # the shell's Django start-up (~1-2 s) is included in what is measured
        stack.shell(
            "from runs.models import DagRun\n"
            "from runs.services import clear_task_instances\n"
            f"run = DagRun.objects.get(run_id={run_id!r})\n"
            "print(clear_task_instances(dag_run=run, task_id='work', map_indexes=[1]))\n"
        )
        wait_until(lambda: "no longer running in the database" in stack.log_text(ti["id"], 1), timeout=10,
                   interval=0.1, what="the old try to stop")
        stopped_after = time.monotonic() - cleared

        assert stack.wait_for_run(run_id, timeout=60) == "success", stack.describe(run_id)
        work = {t["map_index"]: t for t in stack.task_instances(run_id, "work")}
        assert work[1]["try_number"] == 2 and work[1]["state"] == "success"
        assert stack.xcom(ti["id"]) == {"i": 1, "try": 2}
        old, new = stack.log_text(ti["id"], 1), stack.log_text(ti["id"], 2)
        assert "index 1 try 1: done" not in old and "Marking task as SUCCESS" not in old, old
        assert "index 1 try 2: done" in new and "Marking task as SUCCESS" in new, new
        for i in (0, 2):
            assert work[i]["try_number"] == 1 and stack.xcom(work[i]["id"]) == {"i": i, "try": 1}
        print(f"old try stopped {stopped_after:.1f} s after the clear")


class VisibilityTimeoutTests:
    def test_it_never_runs_a_try_twice_when_redis_redelivers_it(self, make_stack: Callable[..., Stack]) -> None:
        stack = make_stack(CELERY_VISIBILITY_TIMEOUT_SEC="2")
        stack.write_dag("sleepy.py", faults_sleepy(retries=0))
        stack.start_scheduler()
        stack.start_worker(concurrency=2)
        stack.wait_for_dag("faults_sleepy")
        run_id = stack.trigger("faults_sleepy", conf={"n": 1, "seconds": 8})
        ti = wait_until(lambda: next((t for t in stack.task_instances(run_id, "work") if t["state"] == "running"), None),
                        timeout=30, interval=0.1, what="work[0] to be running")
        received = stack.output("worker").count(RECEIVED)
        time.sleep(3)  # past the 2 s visibility timeout, still running
        # Kombu scans for expired unacknowledged messages only every ~100 s (restore interval x
        # throttle); do now what any client of the broker would do on its next scan.
        with Connection(stack.redis.url, transport_options={"visibility_timeout": 2}) as conn:
            conn.default_channel.qos.restore_visible(num=100, interval=1)
        wait_until(lambda: stack.output("worker").count(RECEIVED) > received, timeout=10,
                   what="the worker to receive the redelivered message")

        assert stack.wait_for_run(run_id, timeout=30) == "success", stack.describe(run_id)
        work = stack.task_instances(run_id, "work")[0]
        assert work["try_number"] == 1
        logs = stack.query("SELECT try_number, text FROM runs_taskinstancelog WHERE task_instance_id = %s", [ti["id"]])
        assert "".join(r["text"] for r in logs).count("Starting attempt") == 1
        assert {r["try_number"] for r in logs} == {1}
