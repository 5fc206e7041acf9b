"""8. Log read: runs.logs.read_log for one instance's try, out of N instances that all have logs
(three chunks each, as a task's start lines, output and end lines are flushed)."""
from __future__ import annotations

import random

from bench.common import Context, Figure, big_mapped_run, timed

TITLE = "log_read"
NEEDS_STACK = False
CHUNKS = ("[2024-01-01T00:00:00] {dagsapp.task} INFO - Starting attempt 1 of 1\n"
          "[2024-01-01T00:00:00] {dagsapp.task} INFO - Executing <Task(_PythonDecoratedOperator): item> map_index=%s\n",
          "x = %s\n" * 1,
          "[2024-01-01T00:00:01] {dagsapp.task} INFO - Marking task as SUCCESS\n")


def size(ctx: Context) -> int:
    return 1000 if ctx.quick else 100_000


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    return [("log read: one instance", f"1 of {size(ctx)}", "ms")]


def insert_logs(run_pk: int) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM runs_taskinstancelog l JOIN runs_taskinstance t ON t.id = l.task_instance_id"
                    " WHERE t.dag_run_id = %s AND t.task_id = 'item' LIMIT 1", [run_pk])
        if cur.fetchone():
            return
        # Chunk by chunk over all instances, so one instance's chunks are far apart in the table
        # (as when many workers write at once) and a read can't lean on physical order.
        for chunk in CHUNKS:
            cur.execute(
                "INSERT INTO runs_taskinstancelog (task_instance_id, try_number, text, created_at)"
                " SELECT id, 1, replace(%s, '%%s', map_index::text), now() FROM runs_taskinstance"
                " WHERE dag_run_id = %s AND task_id = 'item' AND map_index >= 0",
                [chunk, run_pk],
            )
        cur.execute("ANALYZE runs_taskinstancelog")


def run(ctx: Context) -> list[Figure]:
    from runs.logs import read_log
    from runs.models import TaskInstance

    run_ = big_mapped_run(size(ctx))
    insert_logs(run_.pk)
    ids = list(TaskInstance.objects.filter(dag_run=run_, task_id="item").values_list("pk", flat=True))
    rng = random.Random(8)

    def read() -> None:
        text, _ = read_log(rng.choice(ids), 1)
        if "Marking task as SUCCESS" not in text:
            raise RuntimeError("read_log returned an incomplete log")

    samples = timed(read, repeats=1 if ctx.quick else 21, warmup=1)
    return [Figure("log read: one instance", f"1 of {size(ctx)}", "ms", samples, target_op="<", target_value=50)]
