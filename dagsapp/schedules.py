"""Schedules: None (manual only), ``@once``, presets like ``@daily``, cron strings, or a timedelta."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def normalize_schedule(dag_id: str, schedule: Any) -> str | None:
    """The schedule as a string the runtime understands (cron, ``@once`` or ``timedelta:<seconds>``)."""
    if schedule is None:
        return None
    if isinstance(schedule, timedelta):
        if schedule.total_seconds() <= 0:
            raise ValueError(f"DAG {dag_id!r}: schedule timedelta must be positive")
        return f"timedelta:{schedule.total_seconds()}"
    if not isinstance(schedule, str):
        raise TypeError(f"DAG {dag_id!r}: schedule must be None, a preset, a cron string or a timedelta, not {type(schedule).__name__!r}")
    if schedule == "@once":
        return schedule
    cron = PRESETS.get(schedule, schedule)
    if not croniter.is_valid(cron):
        raise ValueError(f"DAG {dag_id!r}: {schedule!r} is not a valid schedule (expected a preset like '@daily' or a cron expression)")
    return schedule


def next_logical_date(schedule: str, after: datetime) -> datetime:
    """The first scheduled point strictly after ``after`` (timezone-aware in, aware out)."""
    if schedule.startswith("timedelta:"):
        return after + timedelta(seconds=float(schedule.split(":", 1)[1]))
    cron = PRESETS.get(schedule, schedule)
    moment: datetime = croniter(cron, after).get_next(datetime)
    return moment


def interval_end(schedule: str, start: datetime) -> datetime:
    return next_logical_date(schedule, start)


def latest_complete_interval_start(schedule: str, start: datetime, now: datetime) -> datetime:
    """Start of the most recent interval that has ended by ``now`` (no-catchup first run), never before ``start``."""
    if schedule.startswith("timedelta:"):
        delta = timedelta(seconds=float(schedule.split(":", 1)[1]))
        done = int((now - start) / delta)
        return start + delta * max(done - 1, 0)
    cron = PRESETS.get(schedule, schedule)
    last_boundary: datetime = croniter(cron, now).get_prev(datetime)
    interval_start: datetime = croniter(cron, last_boundary).get_prev(datetime)
    return max(interval_start, start)
