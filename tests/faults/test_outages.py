"""Redis and PostgreSQL restarted under a running scheduler and workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from tests.dag_sources import faults_sleepy
from tests.faults.harness import Stack, wait_until

OUTAGE_SEC = 2.0


def _states(stack: Stack, run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ti in stack.task_instances(run_id, "work"):
        counts[ti["state"]] = counts.get(ti["state"], 0) + 1
    return counts


class BrokerRestartTests:
    def test_it_finishes_the_run_when_redis_restarts_with_instances_queued_and_running(
        self, make_stack: Callable[..., Stack]
    ) -> None:
        stack = make_stack()
        stack.write_dag("sleepy.py", faults_sleepy(retries=1))
        stack.start_scheduler()
        stack.start_worker(concurrency=4)
        stack.wait_for_dag("faults_sleepy")
        run_id = stack.trigger("faults_sleepy", conf={"n": 20, "seconds": 1})
        wait_until(lambda: (s := _states(stack, run_id)).get("running", 0) >= 2 and s.get("queued", 0) >= 2,
                   timeout=30, interval=0.1, what="instances queued and running")

        stack.redis.stop()
        time.sleep(OUTAGE_SEC)
        stack.redis.start()
        restarted = time.monotonic()

        assert stack.wait_for_run(run_id, timeout=60) == "success", stack.describe(run_id)
        print(f"run finished {time.monotonic() - restarted:.1f} s after Redis came back")
        assert all(ti["state"] == "success" for ti in stack.task_instances(run_id)), stack.describe(run_id)
        assert stack.processes["scheduler"].poll() is None, stack.output("scheduler")
        assert stack.processes["worker"].poll() is None, stack.output("worker")


class DatabaseRestartTests:
    def test_it_finishes_the_run_and_keeps_every_process_when_postgres_restarts(
        self, make_stack: Callable[..., Stack]
    ) -> None:
        # A timeout above the outage: a try must not be taken for dead because the database was.
        stack = make_stack(TASK_HEARTBEAT_TIMEOUT_SEC="10")
        stack.write_dag("sleepy.py", faults_sleepy(retries=1))
        stack.start_scheduler()
        stack.start_worker(concurrency=4)
        stack.wait_for_dag("faults_sleepy")
        run_id = stack.trigger("faults_sleepy", conf={"n": 8, "seconds": 6})

        def sleeping() -> list[int]:
            # Inside the task's own code: a try that meets the outage while it reads its inputs fails
            # and is retried, which is correct but not what this test is about.
            ids = [t["id"] for t in stack.task_instances(run_id, "work") if t["state"] == "running"]
            return [i for i in ids if "sleeping" in stack.log_text(i, 1)]

        spanning = wait_until(lambda: len(r := sleeping()) >= 4 and r, timeout=30, interval=0.1,
                              what="a wave of instances running")

        stack.pg.stop()
        time.sleep(OUTAGE_SEC)
        stack.pg.start()
        back = datetime.now(UTC)
        restarted = time.monotonic()

        # The tries that ran through the outage heartbeat again (else they would be taken for dead).
        def beating_again() -> bool:
            return bool(stack.query("SELECT 1 FROM runs_taskinstance WHERE id = ANY(%s) AND state = 'running'"
                                    " AND heartbeat_at > %s", [spanning, back]))

        wait_until(beating_again, timeout=4, interval=0.1, what="a heartbeat from a try running through the restart")
        assert stack.wait_for_run(run_id, timeout=90) == "success", stack.describe(run_id)
        print(f"run finished {time.monotonic() - restarted:.1f} s after PostgreSQL came back")
        work = stack.task_instances(run_id, "work")
        assert all(ti["state"] == "success" and ti["try_number"] == 1 for ti in work), stack.describe(run_id) + "".join(
            stack.log_text(ti["id"], 1) for ti in work if ti["try_number"] != 1)
        for ti in work:
            # Nothing the task printed is lost, even what was flushed while the database was down.
            text = stack.log_text(ti["id"], 1)
            assert f"index {ti['map_index']} try 1: sleeping" in text and f"index {ti['map_index']} try 1: done" in text, text
        assert stack.processes["scheduler"].poll() is None, stack.output("scheduler")
        assert stack.processes["worker"].poll() is None, stack.output("worker")
        assert "Database unavailable" in stack.output("scheduler")
