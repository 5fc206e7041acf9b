"""Per-task state counts and timings of runs, aggregated in SQL, frozen once a run has finished."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from runs.models import DagRun, DagRunState, TaskInstanceState
from runs.sqltext import literal

FINISHED_RUN_STATES = (DagRunState.SUCCESS, DagRunState.FAILED)

# One row per (run, task, state): counts, the placeholders' share (-1, and a nested task's below it), the timings of mapped
# instances (map_index >= 0), which the mapped task panel shows, and those of every instance, which the Gantt shows.
_SUMMARY_SQL = """
SELECT dag_run_id, task_id, state, count(*), count(*) FILTER (WHERE map_index < 0),
       min(start_date) FILTER (WHERE map_index >= 0), max(end_date) FILTER (WHERE map_index >= 0),
       sum(duration) FILTER (WHERE map_index >= 0), min(queued_at), min(start_date), max(end_date)
FROM runs_taskinstance WHERE dag_run_id = ANY(%s) GROUP BY dag_run_id, task_id, state
"""

# [task_id, state, count, placeholder_count, first_start_iso, last_end_iso, total_duration,
#  first_queued_iso, first_start_any_iso, last_end_any_iso]; summaries frozen before the last
# three columns existed have seven, and whoever needs those three aggregates again.
Row = list[Any]
FULL_ROW = 10


def aggregate(run_ids: Iterable[int]) -> dict[int, list[Row]]:
    ids = list(run_ids)
    out: dict[int, list[Row]] = defaultdict(list)
    if not ids:
        return out
    with connection.cursor() as cur:
        cur.execute(_SUMMARY_SQL, [ids])
        for run_id, task_id, state, n, placeholder, first, last, total, queued, start, end in cur.fetchall():
            out[run_id].append([task_id, state, n, placeholder, _iso(first), _iso(last), total, _iso(queued), _iso(start), _iso(end)])
    return out


# A live run's counts: the sums of its delta rows (runs.models.TaskCount), however many instances
# it has; how many rows they summed, to know when to compact them.
_LIVE_SQL = """
SELECT dag_run_id, task_id, state, sum(n), sum(placeholders), sum(timed), sum(duration), count(*)
FROM runs_taskcount WHERE dag_run_id = ANY(%s) GROUP BY dag_run_id, task_id, state
"""
# Replaces a run's delta rows with their sums in one statement. Exact under READ COMMITTED: the
# rows it sums are those it deleted (RETURNING); a delta committed meanwhile is not deleted and
# stays, and rows another compaction deleted first are skipped by this one.
_COMPACT_SQL = """
WITH d AS (DELETE FROM runs_taskcount WHERE dag_run_id = %(run)s
           RETURNING dag_run_id, task_id, state, n, placeholders, timed, duration)
INSERT INTO runs_taskcount (dag_run_id, task_id, state, n, placeholders, timed, duration)
SELECT dag_run_id, task_id, state, sum(n), sum(placeholders), sum(timed), sum(duration) FROM d
GROUP BY dag_run_id, task_id, state
HAVING sum(n) <> 0 OR sum(placeholders) <> 0 OR sum(timed) <> 0 OR sum(duration) <> 0
"""
# A reader compacts a run whose counts it summed from more rows than this per (task, state).
COMPACT_AFTER = 8
# Namespace of the advisory locks that keep two compactions of one run apart (they would only
# wait on each other's deleted rows; the result would be exact either way).
_COMPACT_LOCK = 0x7c0

# A mapped task's first start and last end, read by two probes of the task's indexes
# (ti_run_task_start, ti_run_task_end) instead of over its instances: min and max are not deltas.
_SPAN_SQL = f"""
SELECT (SELECT start_date FROM runs_taskinstance
        WHERE dag_run_id = %(run)s AND task_id = %(task)s AND start_date IS NOT NULL AND map_index >= 0
          AND state <> {literal(TaskInstanceState.REMOVED)}
        ORDER BY start_date LIMIT 1),
       (SELECT end_date FROM runs_taskinstance
        WHERE dag_run_id = %(run)s AND task_id = %(task)s AND end_date IS NOT NULL AND map_index >= 0
          AND state <> {literal(TaskInstanceState.REMOVED)}
        ORDER BY end_date DESC LIMIT 1)
"""


def live(run_ids: Iterable[int]) -> dict[int, list[Row]]:
    """Runs' summaries from their live counts: the rows of ``aggregate`` without the timings but
    the mapped instances' total duration; a cost of the number of (task, state) pairs, not of
    instances. A run whose counts were summed from many delta rows is compacted afterwards."""
    ids = list(run_ids)
    out: dict[int, list[Row]] = defaultdict(list)
    if not ids:
        return out
    rows_read: dict[int, int] = defaultdict(int)
    with connection.cursor() as cur:
        cur.execute(_LIVE_SQL, [ids])
        for run_id, task_id, state, n, placeholder, timed, total, deltas in cur.fetchall():
            rows_read[run_id] += deltas
            if n:
                out[run_id].append([task_id, state, int(n), int(placeholder), None, None, float(total) if timed else None,
                                    None, None, None])
    for run_id, deltas in rows_read.items():
        if deltas > COMPACT_AFTER * max(1, len(out[run_id])):
            compact(run_id)
    return out


def compact(run_id: int) -> bool:
    """Replaces the run's delta rows with their sums, unless another compaction of it is under way."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_COMPACT_LOCK, run_id % 2**31])
        if not cur.fetchone()[0]:
            return False
        cur.execute(_COMPACT_SQL, {"run": run_id})
    return True


def mapped_span(run_id: int, task_id: str) -> tuple[datetime | None, datetime | None]:
    """A mapped task's first start and last end over its instances but the removed ones."""
    with connection.cursor() as cur:
        cur.execute(_SPAN_SQL, {"run": run_id, "task": task_id})
        first, last = cur.fetchone()
    return first, last


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def freeze(dag_run_id: int, rows: list[Row]) -> None:
    """Store a finished run's summary; a run reopened meanwhile keeps none (compare-and-swap on its state)."""
    DagRun.objects.filter(pk=dag_run_id, state__in=FINISHED_RUN_STATES, state_summary__isnull=True).update(state_summary=rows)


def run_summaries(runs: Iterable[DagRun]) -> dict[int, list[Row]]:
    """Summaries of these runs: frozen ones as stored, the others from their live counts (without
    timings but the total duration: ``mapped_span`` reads a task's span when a page needs it).

    A finished run without a frozen summary (finished before summaries existed, or rows written
    by hand) gets one now from its instances, so the next page view finds it.
    """
    runs = list(runs)
    out: dict[int, list[Row]] = {r.pk: r.state_summary for r in runs if r.state_summary is not None}
    unfrozen = [r for r in runs if r.state_summary is None and r.state in FINISHED_RUN_STATES]
    full = aggregate(r.pk for r in unfrozen)
    for run in unfrozen:
        out[run.pk] = full.get(run.pk, [])
        freeze(run.pk, out[run.pk])
    going = live(r.pk for r in runs if r.pk not in out)
    for run in runs:
        out.setdefault(run.pk, going.get(run.pk, []))
    return out
