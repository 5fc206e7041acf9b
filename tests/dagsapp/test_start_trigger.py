"""start_from_trigger decided per index from the serialized DAG: literals, upstream results, expand_kwargs."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from dagsapp.decorators import task
from dagsapp.expandinput import NotResolvableHere
from dagsapp.sdk import DAG, ParamRef, TimeDeltaSensor
from dagsapp.serialization import serialize_dag
from dagsapp.start_trigger import StartTriggerData, StartTriggerError, resolve_start
from tests.dagsapp.test_triggers import WaitSensor


@task
def list_waits() -> list[dict[str, Any]]:
    return [{"delta": 1}, {"delta": 2}]


@task
def seconds() -> list[int]:
    return [3, 4]


def _start(d: DAG, task_id: str = "wait") -> StartTriggerData:
    # Through JSON, as the scheduler reads it from the database.
    data = json.loads(json.dumps(serialize_dag(d)))
    return data["tasks"][task_id]["start_trigger"]  # type: ignore[no-any-return]


class SerializedStartTriggerTests:
    def test_it_resolves_literal_trigger_kwargs_per_index_typed(self, make_resolver: Callable[..., Any]) -> None:
        with DAG("d") as d:
            WaitSensor.partial(task_id="wait", start_from_trigger=True).expand(
                trigger_kwargs=[{"delta": dt.timedelta(seconds=5)}, {"delta": 7}])
        st = _start(d)
        assert st["trigger_cls"] == "dagsapp.triggers.TimeDeltaTrigger" and st["next_method"] == "execute_complete"
        first = resolve_start(st, make_resolver(), 0, task_id="wait")
        assert first.start and first.trigger_kwargs == {"delta": dt.timedelta(seconds=5)}
        assert resolve_start(st, make_resolver(), 1, task_id="wait").trigger_kwargs == {"delta": 7}

    def test_it_resolves_trigger_kwargs_from_an_upstream_result(self, make_resolver: Callable[..., Any]) -> None:
        with DAG("d") as d:
            WaitSensor.partial(task_id="wait", start_from_trigger=True).expand(trigger_kwargs=list_waits())
        resolver = make_resolver(results={"list_waits": [{"delta": 1}, {"delta": 2}]})
        assert resolve_start(_start(d), resolver, 1, task_id="wait").trigger_kwargs == {"delta": 2}

    def test_it_resolves_a_zip_of_an_upstream_with_a_literal(self, make_resolver: Callable[..., Any]) -> None:
        with DAG("d") as d:
            pairs = seconds().zip([True, False])
            TimeDeltaSensor.partial(task_id="wait", start_from_trigger=True).expand(trigger_kwargs=pairs.map(lambda p: {"delta": p[0]}))
        with pytest.raises(NotResolvableHere):
            # .map(f) is user code: that index goes to a worker, which resolves it and defers there.
            resolve_start(_start(d), make_resolver(results={"seconds": [3, 4]}), 0, task_id="wait")

    def test_it_decides_start_from_trigger_per_index_with_expand_kwargs(self, make_resolver: Callable[..., Any]) -> None:
        with DAG("d") as d:
            WaitSensor.partial(task_id="wait").expand_kwargs([
                {"trigger_kwargs": {"delta": 1}, "start_from_trigger": True},
                {"trigger_kwargs": {"delta": 2}, "start_from_trigger": False},
            ])
        st = _start(d)
        assert resolve_start(st, make_resolver(), 0, task_id="wait").start is True
        assert resolve_start(st, make_resolver(), 1, task_id="wait").start is False

    def test_it_reads_start_from_trigger_from_a_param(self, make_resolver: Callable[..., Any]) -> None:
        with DAG("d", params={"defer": True}) as d:
            WaitSensor.partial(task_id="wait", start_from_trigger=ParamRef("defer")).expand(trigger_kwargs=[{"delta": 1}])
        resolver = make_resolver(refs={("param", "defer"): False})
        assert resolve_start(_start(d), resolver, 0, task_id="wait").start is False

    def test_it_names_the_task_index_and_key_of_a_key_the_trigger_does_not_take(self, make_resolver: Callable[..., Any]) -> None:
        with DAG("d") as d:
            WaitSensor.partial(task_id="wait", start_from_trigger=True).expand(trigger_kwargs=[{"delta": 1}, {"hours": 2}])
        with pytest.raises(StartTriggerError, match=r"task 'wait' index 1: trigger_kwargs key 'hours' is not accepted by TimeDeltaTrigger"):
            resolve_start(_start(d), make_resolver(), 1, task_id="wait")

    def test_it_refuses_trigger_kwargs_that_are_not_a_dict(self, make_resolver: Callable[..., Any]) -> None:
        with DAG("d") as d:
            WaitSensor.partial(task_id="wait", start_from_trigger=True).expand(trigger_kwargs=list_waits())
        resolver = make_resolver(results={"list_waits": ["soon"]})
        with pytest.raises(StartTriggerError, match=r"task 'wait' index 0: trigger_kwargs must be a dict, not 'str'"):
            resolve_start(_start(d), resolver, 0, task_id="wait")

    def test_it_writes_nothing_for_a_task_that_cannot_start_from_a_trigger(self) -> None:
        with DAG("d") as d:
            TimeDeltaSensor(task_id="wait", delta=1, deferrable=True)
        assert "start_trigger" not in serialize_dag(d)["tasks"]["wait"]

    def test_it_starts_an_unmapped_task_with_the_kwargs_its_init_made(self, make_resolver: Callable[..., Any]) -> None:
        with DAG("d") as d:
            TimeDeltaSensor(task_id="wait", delta=4, start_from_trigger=True, end_from_trigger=True)
        decision = resolve_start(_start(d), make_resolver(), -1, task_id="wait")
        assert decision.start and decision.trigger_kwargs == {"delta": dt.timedelta(seconds=4), "end_from_trigger": True}
