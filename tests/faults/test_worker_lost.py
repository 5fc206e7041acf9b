"""A worker's pool processes killed with -9 while their instances run."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
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


class KilledWholeWorkerTests:
    def test_it_runs_the_lost_workers_instances_again_within_two_minutes(self, make_stack: Callable[..., Stack]) -> None:
        # Default timeouts for lost messages (queued timeout 600 s, the broker's visibility
        # timeout): what brings the dead worker's messages back is what production relies on.
        # Only the heartbeat timeout is short, so the test need not wait a minute for running tries.
        stack = make_stack(TASK_QUEUED_TIMEOUT_SEC="600", TASK_HEARTBEAT_TIMEOUT_SEC="10")
        stack.write_dag("sleepy.py", faults_sleepy(retries=1))
        stack.start_scheduler()
        stack.start_worker(concurrency=2)
        stack.wait_for_dag("faults_sleepy")
        # 96 instances travel 3 per Celery message: the messages the worker holds carry instances
        # still queued behind the one running.
        run_id = stack.trigger("faults_sleepy", conf={"n": 96, "seconds": 0.5})

        running = wait_until(lambda: [ti["map_index"] for ti in stack.task_instances(run_id, "work") if ti["state"] == "running"] or None,
                             timeout=30, interval=0.1, what="instances running")
        stack.kill("worker")  # the main process and its pool: messages it took stay unacknowledged in Redis
        killed_at = time.monotonic()
        stack.start_worker("worker2", concurrency=4)

        assert stack.wait_for_run(run_id, timeout=120) == "success", stack.describe(run_id)
        elapsed = time.monotonic() - killed_at
        work = stack.task_instances(run_id, "work")
        assert len(work) == 96 and all(ti["state"] == "success" for ti in work), stack.describe(run_id)
        tries = {ti["map_index"]: ti["try_number"] for ti in work}
        assert {i for i, t in tries.items() if t == 2} <= set(running), (tries, running)
        assert all(t in (1, 2) for t in tries.values()), tries
        for ti in work:
            # Each try started exactly once: a message handed out again is refused by the claim.
            for try_number in range(1, ti["try_number"] + 1):
                assert stack.log_text(ti["id"], try_number).count("Starting attempt") <= 1, stack.log_text(ti["id"], try_number)
            assert stack.log_text(ti["id"], ti["try_number"]).count("Starting attempt") == 1
        print(f"worker killed with {sorted(running)} running; run finished {elapsed:.1f} s after the kill")


class KilledMidGroupTests:
    def test_it_keeps_the_committed_instances_of_a_batch_and_runs_only_the_unfinished_again(
            self, make_stack: Callable[..., Stack]) -> None:
        # 240 short instances travel 8 per message; each message after its first instance runs as
        # one group (a budget of 10 s), so a kill lands in a group of several claimed instances.
        stack = make_stack(TASK_HEARTBEAT_TIMEOUT_SEC="3", EXECUTION_GROUP_BUDGET_MS="10000")
        stack.write_dag("sleepy.py", faults_sleepy(retries=1))
        stack.start_scheduler()
        stack.start_worker(concurrency=2)
        stack.wait_for_dag("faults_sleepy")
        run_id = stack.trigger("faults_sleepy", conf={"n": 240, "seconds": 0.05})

        def mid_group() -> tuple[set[int], int, set[int]] | None:
            tis = stack.task_instances(run_id, "work")
            committed = {ti["map_index"] for ti in tis if ti["state"] == "success"}
            children = stack.pool_children()
            running = Counter(ti["pid"] for ti in tis if ti["state"] == "running" and ti["pid"] in children)
            pid = next((p for p, count in running.items() if count >= 3), None)
            if not committed or pid is None:
                return None
            return committed, pid, {ti["map_index"] for ti in tis if ti["state"] == "running" and ti["pid"] == pid}

        committed, pid, group = wait_until(mid_group, timeout=60, interval=0.02, what="a group of several instances running")
        os.kill(pid, signal.SIGKILL)

        assert stack.wait_for_run(run_id, timeout=120) == "success", stack.describe(run_id)
        work = stack.task_instances(run_id, "work")
        assert len(work) == 240 and all(ti["state"] == "success" for ti in work), stack.describe(run_id)
        tries = {ti["map_index"]: ti["try_number"] for ti in work}
        retried = {i for i, t in tries.items() if t == 2}
        # What was committed before the kill stays as it was; only the killed process's unfinished
        # instances (its group, claimed together) ran again, each as its second try.
        assert not retried & committed, (retried, committed)
        assert retried and all(t in (1, 2) for t in tries.values()), tries
        # At most one message's instances (8): the group the process had claimed when it died.
        assert len(retried) <= 8, (retried, group)
        for ti in work:
            assert stack.xcom(ti["id"]) == {"i": ti["map_index"], "try": ti["try_number"]}
            last = stack.log_text(ti["id"], ti["try_number"])
            assert last.count("Starting attempt") == 1 and f"index {ti['map_index']} try {ti['try_number']}: done" in last, last
            if ti["try_number"] == 2:
                first = stack.log_text(ti["id"], 1)
                assert "No heartbeat for more than 3 s" in first and "Marking UP_FOR_RETRY" in first, first
        print(f"killed pid {pid} with {sorted(group)} running; {len(committed)} committed before; retried {sorted(retried)}")
