"""Sensors: operators that wait for something. ``poke()`` in a worker slot, or, with
``deferrable=True``, a trigger in the triggerer (the worker slot is freed while it waits).

Behaviour as in Airflow's ``BaseSensorOperator`` and the standard provider's time and file
sensors; ``mode="reschedule"`` is not offered (deferral does that job better).
"""
from __future__ import annotations

import datetime as dt
import glob
import os
import time
from typing import Any

from dagsapp.baseoperator import BaseOperator
from dagsapp.context import Context
from dagsapp.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferralError
from dagsapp.triggers import DateTimeTrigger, FileTrigger, StartTriggerArgs, TimeDeltaTrigger


class PokeReturnValue:
    """What ``poke()`` may return instead of a bool: done or not, and the value to push."""

    def __init__(self, is_done: bool, xcom_value: Any = None) -> None:
        self.is_done = is_done
        self.xcom_value = xcom_value

    def __bool__(self) -> bool:
        return self.is_done


def _seconds(value: dt.timedelta | float, *, name: str, call: str) -> float:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise TypeError(f"{call}: {name} must be a timedelta or a non-negative number of seconds, not {value!r}")


class BaseSensorOperator(BaseOperator):
    """Subclass and implement ``poke(context) -> bool``: it is called every ``poke_interval``
    seconds until it returns True, or ``timeout`` seconds pass (the sensor fails then, or is
    skipped with ``soft_fail``)."""

    ui_color = "#e6f1f2"

    def __init__(
        self,
        *,
        poke_interval: dt.timedelta | float = 60.0,
        timeout: dt.timedelta | float = 7 * 24 * 3600.0,
        soft_fail: bool = False,
        mode: str = "poke",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        call = type(self).__name__
        self.poke_interval = _seconds(poke_interval, name="poke_interval", call=call)
        self.timeout = _seconds(timeout, name="timeout", call=call)
        self.soft_fail = bool(soft_fail)
        if mode != "poke":
            raise ValueError(f"{call}: mode must be 'poke', not {mode!r} (use deferrable=True to free the worker slot while waiting)")
        self.mode = mode

    def poke(self, context: Context) -> bool | PokeReturnValue:
        raise NotImplementedError(f"{type(self).__name__} must implement poke()")

    def execute(self, context: Context) -> Any:
        started = time.monotonic()
        while True:
            result = self.poke(context)
            if result:
                return result.xcom_value if isinstance(result, PokeReturnValue) else None
            if time.monotonic() - started > self.timeout:
                self._timed_out(f"Sensor has timed out; run duration of {time.monotonic() - started:.1f} s exceeds {self.timeout:g} s")
            time.sleep(self.poke_interval)

    def _timed_out(self, message: str) -> None:
        if self.soft_fail:
            raise AirflowSkipException(message)
        raise AirflowSensorTimeout(message)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralError as exc:
            if self.soft_fail:
                raise AirflowSkipException(f"Skipping due to soft_fail: {exc}") from exc
            raise

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """Where a deferred sensor resumes: the trigger's event means the wait is over."""
        return None


class TimeDeltaSensor(BaseSensorOperator):
    """Waits until ``delta`` (a timedelta or seconds) after the run's data interval end.

    With ``deferrable=True`` it waits in the triggerer. Mapped with
    ``partial(start_from_trigger=True).expand(trigger_kwargs=[{"delta": 5}, ...])`` each index
    starts in the triggerer directly (a ``TimeDeltaTrigger`` from when it is scheduled)."""

    start_trigger_args = StartTriggerArgs(trigger_cls=TimeDeltaTrigger, next_method="execute_complete")

    def __init__(
        self,
        *,
        delta: dt.timedelta | float | None = None,
        deferrable: bool = False,
        end_from_trigger: bool = False,
        start_from_trigger: bool = False,
        trigger_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if delta is None and not trigger_kwargs:
            raise TypeError(f"{type(self).__name__}: give delta (or trigger_kwargs with start_from_trigger)")
        self.delta = dt.timedelta(seconds=_seconds(delta, name="delta", call=type(self).__name__)) if delta is not None else None
        self.deferrable = deferrable
        self.end_from_trigger = end_from_trigger
        self.start_from_trigger = start_from_trigger
        assert self.start_trigger_args is not None
        self.start_trigger_args.trigger_kwargs = trigger_kwargs if trigger_kwargs is not None else (
            {"delta": self.delta, "end_from_trigger": end_from_trigger})

    def _target(self, context: Context) -> dt.datetime:
        base = context.get("data_interval_end") or context.get("logical_date") or dt.datetime.now(dt.UTC)
        assert self.delta is not None
        return base + self.delta

    def poke(self, context: Context) -> bool:
        return dt.datetime.now(dt.UTC) >= self._target(context)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        target = self._target(context)
        if target <= dt.datetime.now(dt.UTC):
            return None
        self.defer(trigger=DateTimeTrigger(target, end_from_trigger=self.end_from_trigger), method_name="execute_complete",
                   timeout=self.timeout)


class DateTimeSensor(BaseSensorOperator):
    """Waits until ``target_time`` (a datetime, or an ISO string that may be a template)."""

    template_fields = ("target_time",)
    start_trigger_args = StartTriggerArgs(trigger_cls=DateTimeTrigger, next_method="execute_complete")

    def __init__(self, *, target_time: dt.datetime | str, deferrable: bool = False, end_from_trigger: bool = False,
                 start_from_trigger: bool = False, trigger_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(target_time, (str, dt.datetime)):
            raise TypeError(f"{type(self).__name__}: target_time must be a datetime or a string, not {type(target_time).__name__!r}")
        self.target_time = target_time
        self.deferrable = deferrable
        self.end_from_trigger = end_from_trigger
        self.start_from_trigger = start_from_trigger
        assert self.start_trigger_args is not None
        self.start_trigger_args.trigger_kwargs = trigger_kwargs if trigger_kwargs is not None else (
            {"moment": target_time, "end_from_trigger": end_from_trigger})

    def _moment(self) -> dt.datetime:
        moment = self.target_time if isinstance(self.target_time, dt.datetime) else dt.datetime.fromisoformat(self.target_time)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)

    def poke(self, context: Context) -> bool:
        return dt.datetime.now(dt.UTC) >= self._moment()

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(trigger=DateTimeTrigger(self._moment(), end_from_trigger=self.end_from_trigger), method_name="execute_complete",
                   timeout=self.timeout)


class FileSensor(BaseSensorOperator):
    """Waits for a file (``filepath``, a glob) to exist. Returns the path it found."""

    template_fields = ("filepath",)
    start_trigger_args = StartTriggerArgs(trigger_cls=FileTrigger, next_method="execute_complete")

    def __init__(self, *, filepath: str, recursive: bool = False, deferrable: bool = False,
                 start_from_trigger: bool = False, trigger_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filepath = filepath
        self.recursive = recursive
        self.deferrable = deferrable
        self.start_from_trigger = start_from_trigger
        assert self.start_trigger_args is not None
        self.start_trigger_args.trigger_kwargs = trigger_kwargs if trigger_kwargs is not None else (
            {"filepath": filepath, "poke_interval": self.poke_interval, "recursive": recursive})

    def _found(self) -> str | None:
        for path in glob.glob(self.filepath, recursive=self.recursive):
            if os.path.isfile(path):
                return path
        return None

    def poke(self, context: Context) -> bool | PokeReturnValue:
        found = self._found()
        return PokeReturnValue(True, found) if found else False

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        found = self._found()
        if found:
            return found
        self.defer(trigger=FileTrigger(self.filepath, self.poke_interval, self.recursive), method_name="execute_complete",
                   timeout=self.timeout)

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        return event
