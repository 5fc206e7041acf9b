"""The Gantt chart of one run: a bar per task (a mapped task spans its instances), queued time
apart from run time; a mapped task opens into its instances, a page at a time. Server-rendered SVG."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from runs import summaries
from runs.models import DagRun, TaskInstanceState
from runs.sqltext import literal

S = TaskInstanceState
INSTANCES_PER_PAGE = 50

# One row per (task, state) over every instance of the run but the removed ones and a mapped
# task's expanded-away placeholder: how many, and the span of their queued, start and end times.
# The state counts give the task's state (the Grid's rule, runs.web.queries.aggregate_state).
_TASKS_SQL = f"""
SELECT task_id, state, count(*), min(queued_at), min(start_date), max(end_date), bool_or(start_date IS NOT NULL AND end_date IS NULL)
FROM runs_taskinstance WHERE dag_run_id = %(run)s AND state <> {literal(S.REMOVED)}
GROUP BY task_id, state
"""
_INSTANCES_SQL = f"""
SELECT map_index, rendered_map_index, state, queued_at, start_date, end_date
FROM runs_taskinstance WHERE dag_run_id = %(run)s AND task_id = %(task)s AND map_index >= 0 AND state <> {literal(S.REMOVED)}
ORDER BY start_date NULLS LAST, map_index LIMIT %(limit)s OFFSET %(offset)s
"""


@dataclass(frozen=True)
class Timing:
    """A task (all its instances) or one instance: its state and its queued, start and end times."""

    task_id: str
    map_index: int | None
    name: str
    state: str
    count: int
    queued: datetime | None
    start: datetime | None
    end: datetime | None
    running: bool = False


@dataclass
class _Span:
    count: int = 0
    queued: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    running: bool = False

    def add(self, n: int, queued: datetime | None, start: datetime | None, end: datetime | None, running: bool) -> None:
        self.count += n
        self.queued = min(filter(None, (self.queued, queued)), default=None)
        self.start = min(filter(None, (self.start, start)), default=None)
        self.end = max(filter(None, (self.end, end)), default=None)
        self.running = self.running or running


def task_timings(run: DagRun, *, aggregate: Callable[[dict[str, int]], str | None]) -> dict[str, Timing]:
    """Each task's span and state: a finished run's from its frozen summary (no query), another's
    in ONE grouped query, whatever the number of instances."""
    frozen = run.state_summary
    rows: list[tuple[Any, ...]]
    if frozen is not None and all(len(r) >= summaries.FULL_ROW for r in frozen):
        rows = [(task_id, state, n, _when(queued), _when(start), _when(end), False)
                for task_id, state, n, _p, _f, _l, _t, queued, start, end, *_ in frozen if state != S.REMOVED]
    else:
        with connection.cursor() as cur:
            cur.execute(_TASKS_SQL, {"run": run.pk})
            rows = cur.fetchall()
    spans: dict[str, _Span] = {}
    counts: dict[str, dict[str, int]] = {}
    for task_id, state, n, queued, start, end, running in rows:
        spans.setdefault(task_id, _Span()).add(n, queued, start, end, bool(running))
        counts.setdefault(task_id, {})[state] = n
    return {task_id: Timing(task_id, None, task_id, aggregate(counts[task_id]) or S.NONE, sp.count, sp.queued, sp.start, sp.end,
                            sp.running) for task_id, sp in spans.items()}


def _when(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def instance_timings(run: DagRun, task_id: str, *, page: int) -> list[Timing]:
    """One page of a mapped task's instances, by start (index ti_run_task_start)."""
    with connection.cursor() as cur:
        cur.execute(_INSTANCES_SQL, {"run": run.pk, "task": task_id, "limit": INSTANCES_PER_PAGE,
                                     "offset": (page - 1) * INSTANCES_PER_PAGE})
        rows = cur.fetchall()
    return [Timing(task_id, i, name or "", state, 1, queued, start, end, start is not None and end is None)
            for i, name, state, queued, start, end in rows]


@dataclass(frozen=True)
class GanttBar:
    timing: Timing
    y: int
    queued_x: float | None  # where the queued part starts; it ends at start_x
    start_x: float | None
    width: float
    label: str
    depth: int
    href: str = ""
    expanded: bool = False

    @property
    def queued_width(self) -> float:
        return round(self.start_x - self.queued_x, 2) if self.queued_x is not None and self.start_x is not None else 0.0


def place(rows: list[tuple[Timing, int, str, bool]], *, now: datetime, left: float, width: float,
          row_height: int) -> tuple[list[GanttBar], float, datetime | None]:
    """Bars on one time axis from the earliest queued or start time to the latest end (or now while
    running); returns them, the axis length in seconds and its origin."""
    times = [t for timing, *_ in rows for t in (timing.queued, timing.start) if t is not None]
    if not times:
        return [GanttBar(t, i * row_height, None, None, 0.0, t.name, d, h, e) for i, (t, d, h, e) in enumerate(rows)], 0.0, None
    origin = min(times)
    ends = [timing.end or now for timing, *_ in rows if timing.start is not None]
    axis = max([(e - origin).total_seconds() for e in ends] + [1e-3])

    def x(t: datetime) -> float:
        return round(left + width * (t - origin).total_seconds() / axis, 2)

    bars = []
    for i, (t, depth, href, expanded) in enumerate(rows):
        start_x = x(t.start) if t.start is not None else None
        end_x = x(t.end or now) if t.start is not None else None
        queued_x = x(t.queued) if t.queued is not None and t.start is not None and t.queued < t.start else None
        bar_width = max(1.5, end_x - start_x) if start_x is not None and end_x is not None else 0.0
        bars.append(GanttBar(t, i * row_height, queued_x, start_x, bar_width, t.name, depth, href, expanded))
    return bars, axis, origin
