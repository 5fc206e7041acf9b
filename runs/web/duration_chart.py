"""The duration chart of a task's instances: one query for the figures, bars placed in Python."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from runs.models import DagRun, TaskInstanceState

S = TaskInstanceState


@dataclass(frozen=True)
class InstanceTiming:
    map_index: int
    rendered_map_index: str | None
    state: str
    try_number: int
    start_date: datetime
    end_date: datetime | None
    duration: float | None


@dataclass(frozen=True)
class DurationStats:
    total: int  # instances, excluding removed
    not_started: int
    median: float | None  # of the finished instances' durations
    first_start: datetime | None
    last_end: datetime | None
    bars: list[InstanceTiming]  # the first `limit` started instances, by start
    # The median absolute deviation of the finished instances' durations: their spread, which a
    # straggler stands out of (robust: a few stragglers do not widen it, as they would a standard deviation).
    mad: float | None = None


def task_durations(*, dag_run: DagRun, task_id: str, mapped: bool, limit: int) -> DurationStats:
    """The chart's data in ONE query: the aggregates over every instance (not only the page)
    are joined to the first ``limit`` started instances, by start (index ti_run_task_start).

    The LEFT JOIN keeps one row when nothing has started yet, so the counts still come back.
    A mapped task's -1 placeholder is not an instance; an unmapped task has only that one.
    """
    sql = """
        WITH tis AS (
            SELECT map_index, rendered_map_index, state, try_number, start_date, end_date, duration
            FROM runs_taskinstance
            WHERE dag_run_id = %(run)s AND task_id = %(task)s AND map_index >= %(min_index)s AND state <> %(removed)s
        ), stats AS (
            SELECT count(*) AS total,
                   count(*) FILTER (WHERE start_date IS NULL) AS not_started,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY duration) AS median,
                   min(start_date) AS first_start,
                   max(end_date) AS last_end
            FROM tis
        ), spread AS (
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(tis.duration - stats.median)) AS mad
            FROM tis, stats WHERE tis.duration IS NOT NULL
        ), page AS (
            SELECT * FROM tis WHERE start_date IS NOT NULL ORDER BY start_date, map_index LIMIT %(limit)s
        )
        SELECT stats.total, stats.not_started, stats.median, stats.first_start, stats.last_end, spread.mad,
               page.map_index, page.rendered_map_index, page.state, page.try_number,
               page.start_date, page.end_date, page.duration
        FROM stats CROSS JOIN spread LEFT JOIN page ON true
        ORDER BY page.start_date, page.map_index
    """
    with connection.cursor() as cur:
        cur.execute(sql, {"run": dag_run.pk, "task": task_id, "removed": str(S.REMOVED), "limit": limit,
                          "min_index": 0 if mapped else -1})
        rows = cur.fetchall()
    total, not_started, median, first_start, last_end, mad = rows[0][:6]
    bars = [InstanceTiming(*row[6:]) for row in rows if row[6] is not None]
    return DurationStats(total=total, not_started=not_started, median=median, first_start=first_start,
                         last_end=last_end, bars=bars, mad=mad)


@dataclass(frozen=True)
class Bar:
    timing: InstanceTiming
    offset: float  # seconds from the first start
    seconds: float  # its duration, or how long it has been running
    running: bool
    straggler: bool  # beyond straggler_threshold()
    left_pct: float
    width_pct: float

    @property
    def seconds_text(self) -> str:
        return human_duration(self.seconds)


def human_duration(seconds: float) -> str:
    """0.42s, 12.3s, 4m 05s, 2h 03m."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


# A straggler lies far beyond the spread of the task's durations (median + 5 robust standard
# deviations, from the median absolute deviation), so an ordinary spread or a long tail of quick
# instances is not flagged, and beyond a time a person notices: a 1,000-instance run of 20 ms
# tasks has dozens over 2x the median, none of which matter.
STRAGGLER_SPREADS = 5.0
MAD_TO_SIGMA = 1.4826
STRAGGLER_MIN_SECONDS = 1.0


def straggler_threshold(*, median: float | None, mad: float | None) -> float | None:
    """Seconds past which an instance is a straggler, or None before any instance finished."""
    if median is None or mad is None:
        return None
    return median + max(STRAGGLER_SPREADS * MAD_TO_SIGMA * mad, STRAGGLER_MIN_SECONDS)


def chart_bars(stats: DurationStats, *, now: datetime) -> tuple[list[Bar], float]:
    """Bars placed on a time axis that starts at the first start and ends at the last end (or
    now, while an instance runs); returns them with the axis' length in seconds."""
    if not stats.bars or stats.first_start is None:
        return [], 0.0
    origin = stats.first_start
    spans = []
    for t in stats.bars:
        end = t.end_date or now
        spans.append((t, (t.start_date - origin).total_seconds(), max(0.0, (end - t.start_date).total_seconds()), t.end_date is None))
    axis = max(offset + seconds for _t, offset, seconds, _r in spans) or 1.0
    threshold = straggler_threshold(median=stats.median, mad=stats.mad)
    bars = [
        Bar(timing=t, offset=offset, seconds=seconds, running=running,
            straggler=threshold is not None and seconds > threshold,
            left_pct=round(100 * offset / axis, 3),
            # At least a sliver, so an instant instance still shows.
            width_pct=round(max(0.4, 100 * seconds / axis), 3))
        for t, offset, seconds, running in spans
    ]
    return bars, axis
