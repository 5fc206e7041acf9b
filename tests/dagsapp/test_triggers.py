"""Triggers, deferral and sensors as a DAG author writes them (no database)."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from dagsapp.sdk import (
    DAG,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseOperator,
    BaseSensorOperator,
    DateTimeTrigger,
    FileSensor,
    FileTrigger,
    StartTriggerArgs,
    TaskDeferralTimeout,
    TaskDeferred,
    TaskSuccessEvent,
    TimeDeltaSensor,
    TimeDeltaTrigger,
    TriggerEvent,
)
from dagsapp.triggers import build_trigger, decode_kwargs, encode_kwargs


async def _first_event(trigger: Any) -> Any:
    async for event in trigger.run():
        return event
    return None


class TriggerSerializationTests:
    def test_it_round_trips_datetime_and_timedelta_kwargs_typed_through_json(self) -> None:
        moment = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        kwargs = {"moment": moment, "wait": dt.timedelta(seconds=90), "nested": {"at": [moment]}, "pair": (1, "a"), "n": 3}
        stored = json.loads(json.dumps(encode_kwargs(kwargs)))
        assert decode_kwargs(stored) == kwargs
        assert isinstance(decode_kwargs(stored)["wait"], dt.timedelta)

    def test_it_keeps_a_dict_that_looks_like_a_tag_as_data(self) -> None:
        kwargs = {"x": {"__type": "datetime", "__var": "2030-01-01T00:00:00"}}
        assert decode_kwargs(json.loads(json.dumps(encode_kwargs(kwargs)))) == kwargs

    def test_it_names_the_key_that_cannot_be_stored(self) -> None:
        with pytest.raises(TypeError, match="trigger kwarg 'conn'"):
            encode_kwargs({"conn": object()})

    def test_it_rebuilds_a_trigger_from_its_classpath_and_stored_kwargs(self) -> None:
        trigger = DateTimeTrigger(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        classpath, kwargs = trigger.serialize()
        assert classpath == "dagsapp.triggers.DateTimeTrigger"
        again = build_trigger(classpath, json.loads(json.dumps(encode_kwargs(kwargs))))
        assert isinstance(again, DateTimeTrigger) and again.moment == trigger.moment

    def test_it_serializes_a_time_delta_trigger_as_the_moment_it_fires(self) -> None:
        before = dt.datetime.now(dt.UTC)
        classpath, kwargs = TimeDeltaTrigger(30).serialize()
        assert classpath == "dagsapp.triggers.DateTimeTrigger"
        assert dt.timedelta(seconds=29) < kwargs["moment"] - before < dt.timedelta(seconds=31)


class BuiltInTriggerTests:
    def test_it_fires_a_time_delta_trigger_after_its_delta_given_in_seconds(self) -> None:
        trigger = TimeDeltaTrigger(0.05)
        event = asyncio.run(_first_event(trigger))
        assert isinstance(event, TriggerEvent) and event.payload == trigger.moment

    def test_it_ends_the_task_from_the_trigger_when_asked(self) -> None:
        event = asyncio.run(_first_event(TimeDeltaTrigger(dt.timedelta(0), end_from_trigger=True)))
        assert isinstance(event, TaskSuccessEvent)

    def test_it_fires_a_file_trigger_once_a_matching_file_appears(self, tmp_path: Path) -> None:
        async def scenario() -> Any:
            waiting = asyncio.ensure_future(_first_event(FileTrigger(str(tmp_path / "*.csv"), poke_interval=0.02)))
            await asyncio.sleep(0.1)
            assert not waiting.done()
            (tmp_path / "a.csv").write_text("x")
            return await asyncio.wait_for(waiting, 2)

        assert asyncio.run(scenario()).payload == str(tmp_path / "a.csv")

    def test_it_refuses_a_delta_that_is_not_a_duration(self) -> None:
        with pytest.raises(TypeError, match="delta must be a timedelta or a number of seconds"):
            TimeDeltaTrigger("soon")  # type: ignore[arg-type]
        assert TimeDeltaTrigger("0").moment <= TimeDeltaTrigger(1).moment  # type: ignore[arg-type]


class WaitOperator(BaseOperator):
    def execute(self, context: dict[str, Any]) -> None:
        self.defer(trigger=TimeDeltaTrigger(5), method_name="done", kwargs={"extra": 1}, timeout=60)

    def done(self, context: dict[str, Any], event: Any = None, extra: int = 0) -> Any:
        return {"event": event, "extra": extra}


class DeferTests:
    def test_it_raises_task_deferred_with_the_trigger_method_kwargs_and_timeout(self) -> None:
        with pytest.raises(TaskDeferred) as raised:
            WaitOperator(task_id="w", _standalone=True).execute({})
        assert raised.value.method_name == "done" and raised.value.kwargs == {"extra": 1}
        assert raised.value.timeout == dt.timedelta(seconds=60)
        assert isinstance(raised.value.trigger, DateTimeTrigger)

    def test_it_is_not_swallowed_by_a_task_that_catches_exception(self) -> None:
        assert not issubclass(TaskDeferred, Exception)

    def test_it_resumes_by_calling_the_method_with_the_event_and_the_kwargs(self) -> None:
        op = WaitOperator(task_id="w", _standalone=True)
        assert op.resume_execution("done", {"extra": 2, "event": "fired"}, {}) == {"event": "fired", "extra": 2}

    def test_it_raises_a_timeout_when_resumed_after_the_trigger_timed_out(self) -> None:
        with pytest.raises(TaskDeferralTimeout):
            WaitOperator(task_id="w", _standalone=True).resume_execution("__fail__", {"error": "Trigger timeout"}, {})


class WaitSensor(BaseSensorOperator):
    """The seed article's pattern, as written there (seconds instead of hours)."""

    start_trigger_args = StartTriggerArgs(
        trigger_cls="dagsapp.triggers.TimeDeltaTrigger",
        trigger_kwargs={"delta": dt.timedelta(seconds=1)},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )
    start_from_trigger = True

    def __init__(self, *args: Any, trigger_kwargs: dict[str, Any] | None, start_from_trigger: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_trigger_args.trigger_kwargs = trigger_kwargs  # type: ignore[union-attr]
        self.start_from_trigger = start_from_trigger

    def execute_complete(self, context: dict[str, Any], event: Any = None) -> None:
        return


class SensorTests:
    def test_it_accepts_the_seed_pattern_mapped_over_trigger_kwargs(self) -> None:
        with DAG("seed") as d:
            WaitSensor.partial(task_id="wait", start_from_trigger=True).expand(trigger_kwargs=[{"delta": 1}, {"delta": 2}])
        assert d.task_dict["wait"].is_mapped

    def test_it_gives_each_instance_its_own_start_trigger_args(self) -> None:
        a = WaitSensor(task_id="a", trigger_kwargs={"delta": 1}, start_from_trigger=True, _standalone=True)
        b = WaitSensor(task_id="b", trigger_kwargs={"delta": 2}, start_from_trigger=False, _standalone=True)
        assert a.start_trigger_args.trigger_kwargs == {"delta": 1}  # type: ignore[union-attr]
        assert WaitSensor.start_trigger_args.trigger_kwargs == {"delta": dt.timedelta(seconds=1)}  # type: ignore[union-attr]
        assert b.start_from_trigger is False

    def test_it_pokes_until_done_and_returns_the_found_path(self, tmp_path: Path) -> None:
        (tmp_path / "x.txt").write_text("1")
        op = FileSensor(task_id="f", filepath=str(tmp_path / "*.txt"), poke_interval=0.01, _standalone=True)
        assert op.execute({}) == str(tmp_path / "x.txt")

    def test_it_times_out_or_skips_with_soft_fail(self, tmp_path: Path) -> None:
        args = {"task_id": "f", "filepath": str(tmp_path / "never"), "poke_interval": 0.01, "timeout": 0.05, "_standalone": True}
        with pytest.raises(AirflowSensorTimeout):
            FileSensor(**args).execute({})
        with pytest.raises(AirflowSkipException):
            FileSensor(soft_fail=True, **args).execute({})

    def test_it_defers_a_deferrable_file_sensor_to_a_file_trigger(self, tmp_path: Path) -> None:
        op = FileSensor(task_id="f", filepath=str(tmp_path / "later"), deferrable=True, poke_interval=2, timeout=30, _standalone=True)
        with pytest.raises(TaskDeferred) as raised:
            op.execute({})
        assert isinstance(raised.value.trigger, FileTrigger) and raised.value.trigger.poke_interval == 2.0
        assert raised.value.timeout == dt.timedelta(seconds=30)

    def test_it_skips_a_deferred_sensor_whose_trigger_timed_out_with_soft_fail(self) -> None:
        op = TimeDeltaSensor(task_id="t", delta=5, deferrable=True, soft_fail=True, _standalone=True)
        with pytest.raises(AirflowSkipException):
            op.resume_execution("__fail__", {"error": "Trigger timeout"}, {})

    def test_it_defers_a_time_delta_sensor_until_the_interval_end_plus_delta(self) -> None:
        end = dt.datetime.now(dt.UTC)
        op = TimeDeltaSensor(task_id="t", delta=60, deferrable=True, _standalone=True)
        with pytest.raises(TaskDeferred) as raised:
            op.execute({"data_interval_end": end})
        assert raised.value.trigger.moment == end + dt.timedelta(seconds=60)

    def test_it_refuses_the_reschedule_mode(self) -> None:
        with pytest.raises(ValueError, match="mode must be 'poke'"):
            TimeDeltaSensor(task_id="t", delta=1, mode="reschedule", _standalone=True)
