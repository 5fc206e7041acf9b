"""Per-task state counts and timings of runs, aggregated in SQL, frozen once a run has finished."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection

from runs.models import DagRun, DagRunState

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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def freeze(dag_run_id: int, rows: list[Row]) -> None:
    """Store a finished run's summary; a run reopened meanwhile keeps none (compare-and-swap on its state)."""
    DagRun.objects.filter(pk=dag_run_id, state__in=FINISHED_RUN_STATES, state_summary__isnull=True).update(state_summary=rows)


def run_summaries(runs: Iterable[DagRun]) -> dict[int, list[Row]]:
    """Summaries of these runs: frozen ones as stored, the others from one grouped query.

    A finished run without a frozen summary (finished before summaries existed, or rows written
    by hand) gets one now, so the next page view finds it.
    """
    runs = list(runs)
    out: dict[int, list[Row]] = {r.pk: r.state_summary for r in runs if r.state_summary is not None}
    live = aggregate(r.pk for r in runs if r.state_summary is None)
    for run in runs:
        if run.state_summary is None:
            out[run.pk] = live.get(run.pk, [])
            if run.state in FINISHED_RUN_STATES:
                freeze(run.pk, out[run.pk])
    return out
