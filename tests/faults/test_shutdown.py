"""SIGTERM is a clean stop: a worker finishes the instances it runs, the scheduler its current step."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from tests.dag_sources import faults_sleepy
from tests.faults.harness import Stack, wait_until


class WorkerShutdownTests:
    def test_it_lets_running_instances_finish_and_leaves_the_rest_for_another_worker(self, make_stack: Callable[..., Stack]) -> None:
        stack = make_stack()
        stack.write_dag("sleepy.py", faults_sleepy(retries=0))
        stack.start_scheduler()
        worker = stack.start_worker(concurrency=2)
        stack.wait_for_dag("faults_sleepy")
        run_id = stack.trigger("faults_sleepy", conf={"n": 6, "seconds": 3})
        running = wait_until(lambda: [t for t in stack.task_instances(run_id, "work") if t["state"] == "running"] or None,
                             timeout=30, interval=0.1, what="instances to start")

        worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        assert worker.wait(30) == 0
        finished = {t["map_index"]: t for t in stack.task_instances(run_id, "work")}
        for t in running:
            # Ran to the end in the stopping worker: success on its first try, not cut off and retried.
            assert finished[t["map_index"]]["state"] == "success"
            assert finished[t["map_index"]]["try_number"] == 1

        stack.start_worker("worker2", concurrency=2)
        assert stack.wait_for_run(run_id, timeout=60) == "success"
        assert {t["try_number"] for t in stack.task_instances(run_id, "work")} == {1}


class SchedulerShutdownTests:
    def test_it_exits_cleanly_and_promptly_on_sigterm(self, make_stack: Callable[..., Stack]) -> None:
        stack = make_stack()
        stack.write_dag("sleepy.py", faults_sleepy(retries=0))
        scheduler = stack.start_scheduler()
        stack.start_worker(concurrency=2)
        stack.wait_for_dag("faults_sleepy")
        run_id = stack.trigger("faults_sleepy", conf={"n": 4, "seconds": 1})
        wait_until(lambda: any(t["state"] == "running" for t in stack.task_instances(run_id, "work")) or None,
                   timeout=30, interval=0.1, what="instances to start")

        stopped = time.monotonic()
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(15) == 0
        assert time.monotonic() - stopped < 10
        assert "Scheduler stopped" in stack.output("scheduler")

        # Nothing was left half-done: a new scheduler picks the run up and finishes it.
        stack.start_scheduler("scheduler2")
        assert stack.wait_for_run(run_id, timeout=60) == "success"
