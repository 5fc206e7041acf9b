"""Triggers: small async waits that a triggerer process runs for deferred task instances.

A trigger is stored as ``(classpath, kwargs)`` (``BaseTrigger.serialize``); the triggerer imports
the class and builds it again, so the kwargs are stored typed (``encode_kwargs``): a ``datetime``
or a ``timedelta`` comes back as one, not as a string. ``run()`` is an async generator that
yields ``TriggerEvent``s; the first one resumes the task instance.

Behaviour as in Airflow 3 (``airflow.triggers.base``, ``temporal``, ``file``); pure Python here.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import glob
import importlib
import inspect
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class TriggerEvent:
    """What a trigger yields when it fires; ``payload`` (JSON-able, datetimes allowed) reaches the
    task's ``method_name`` as ``event``."""

    def __init__(self, payload: Any = None) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self.payload!r}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and getattr(other, "payload", None) == self.payload

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.payload)))


class BaseTaskEndEvent(TriggerEvent):
    """An event that ends the task instance from the triggerer, without a worker (``end_from_trigger``)."""

    state: str = ""

    def __init__(self, *, xcoms: dict[str, Any] | None = None) -> None:
        super().__init__({"state": self.state, "xcoms": xcoms or {}})
        self.xcoms = xcoms or {}


class TaskSuccessEvent(BaseTaskEndEvent):
    state = "success"


class TaskFailedEvent(BaseTaskEndEvent):
    state = "failed"


class TaskSkippedEvent(BaseTaskEndEvent):
    state = "skipped"


class BaseTrigger:
    """Subclass it: ``serialize()`` returns ``(classpath, kwargs)`` that rebuild it, and
    ``async def run()`` yields ``TriggerEvent``s. ``cleanup()`` runs when the trigger stops, fired
    or not (cancelled because its instance was cleared, or moved to another triggerer)."""

    def __init__(self, **kwargs: Any) -> None:
        # Set by the triggerer: which instance this trigger runs for (for its log lines).
        self.task_instance_id: int | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError(f"{type(self).__name__} must implement serialize()")

    async def run(self) -> AsyncIterator[TriggerEvent]:
        raise NotImplementedError(f"{type(self).__name__} must implement run()")
        yield  # pragma: no cover - makes this an async generator

    async def cleanup(self) -> None:
        return None

    def __repr__(self) -> str:
        classpath, kwargs = self.serialize()
        return f"<{classpath} {kwargs}>"


def classpath_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def import_string(path: str) -> Any:
    """The object at a dotted path: ``dagsapp.triggers.TimeDeltaTrigger``."""
    module_name, _, name = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted path to a class")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, name)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {name!r}") from None


def trigger_params(trigger_cls: type) -> list[str] | None:
    """The keyword arguments the trigger's constructor accepts; None when it takes ``**kwargs``
    of its own (not only forwarded to BaseTrigger), so any key goes."""
    names: list[str] = []
    for klass in trigger_cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass in (object, BaseTrigger):
            continue
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind is p.VAR_POSITIONAL:
                continue
            if p.kind is p.VAR_KEYWORD:
                continue
            if p.name not in names:
                names.append(p.name)
        break  # a subclass that forwards **kwargs to its parent accepts what its own signature names
    return names


# Typed kwargs: JSON with tagged values for what JSON has no type for. A dict that happens to have
# the tag key is escaped the same way, so decoding never mistakes data for a tag.
_TYPE, _VALUE = "__type", "__var"


def encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {_TYPE: "datetime", _VALUE: value.isoformat()}
    if isinstance(value, dt.date):
        return {_TYPE: "date", _VALUE: value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {_TYPE: "timedelta", _VALUE: value.total_seconds()}
    if isinstance(value, tuple):
        return {_TYPE: "tuple", _VALUE: [encode_value(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {_TYPE: "set", _VALUE: [encode_value(v) for v in sorted(value, key=repr)]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"a dict key must be a string, not {bad[0]!r}")
        encoded = {k: encode_value(v) for k, v in value.items()}
        return {_TYPE: "dict", _VALUE: encoded} if _TYPE in value else encoded
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__!r} cannot be stored (a trigger's kwargs hold JSON values, datetime, date, timedelta)")


def decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        kind = value.get(_TYPE)
        if kind is None or _VALUE not in value or len(value) != 2:
            return {k: decode_value(v) for k, v in value.items()}
        raw = value[_VALUE]
        if kind == "datetime":
            return dt.datetime.fromisoformat(raw)
        if kind == "date":
            return dt.date.fromisoformat(raw)
        if kind == "timedelta":
            return dt.timedelta(seconds=float(raw))
        if kind == "tuple":
            return tuple(decode_value(v) for v in raw)
        if kind == "set":
            return {decode_value(v) for v in raw}
        if kind == "dict":
            return {k: decode_value(v) for k, v in raw.items()}
    return value


def encode_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A trigger's kwargs as JSON, typed; TypeError names the key that cannot be stored."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        try:
            out[key] = encode_value(value)
        except TypeError as exc:
            raise TypeError(f"trigger kwarg {key!r}: {exc}") from None
    return out


def decode_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: decode_value(v) for k, v in kwargs.items()}


@dataclass
class StartTriggerArgs:
    """How a task starts in the triggerer, without a worker (``start_from_trigger``): the trigger
    (a dotted path or a class) and its kwargs, the method a worker calls on the event, its extra
    kwargs, and the timeout (a ``timedelta`` or seconds)."""

    trigger_cls: str | type
    next_method: str = "execute_complete"
    trigger_kwargs: dict[str, Any] | None = None
    next_kwargs: dict[str, Any] | None = None
    timeout: dt.timedelta | float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def classpath(self) -> str:
        return self.trigger_cls if isinstance(self.trigger_cls, str) else classpath_of(self.trigger_cls)

    @property
    def timeout_seconds(self) -> float | None:
        if self.timeout is None:
            return None
        return self.timeout.total_seconds() if isinstance(self.timeout, dt.timedelta) else float(self.timeout)


def _as_delta(value: dt.timedelta | float | int, *, call: str) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.timedelta(seconds=float(value))
    if isinstance(value, str):
        # A rendered template ("{{ params.wait }}") is text: a number in it is seconds.
        try:
            return dt.timedelta(seconds=float(value))
        except ValueError:
            pass
    raise TypeError(f"{call}: delta must be a timedelta or a number of seconds, not {value!r}")


def _aware(moment: dt.datetime | str) -> dt.datetime:
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if not isinstance(moment, dt.datetime):
        raise TypeError(f"DateTimeTrigger: moment must be a datetime, not {type(moment).__name__!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class DateTimeTrigger(BaseTrigger):
    """Fires at ``moment`` (a timezone-aware datetime; a naive one is taken as UTC). With
    ``end_from_trigger`` the instance succeeds from the triggerer, without a worker."""

    def __init__(self, moment: dt.datetime | str, *, end_from_trigger: bool = False) -> None:
        super().__init__()
        self.moment = _aware(moment)
        self.end_from_trigger = end_from_trigger

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return classpath_of(DateTimeTrigger), {"moment": self.moment, "end_from_trigger": self.end_from_trigger}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Sleep in steps of at most an hour: a long sleep would miss a changed clock.
        while True:
            left = (self.moment - dt.datetime.now(dt.UTC)).total_seconds()
            if left <= 0:
                break
            await asyncio.sleep(min(left, 3600.0))
        log.info("trigger fired at %s (waited until %s)", dt.datetime.now(dt.UTC).isoformat(), self.moment.isoformat())
        if self.end_from_trigger:
            yield TaskSuccessEvent()
        else:
            yield TriggerEvent(self.moment)


class TimeDeltaTrigger(DateTimeTrigger):
    """Fires ``delta`` after it is created (a ``timedelta`` or a number of seconds, so that it can
    come from JSON: ``expand(trigger_kwargs=[{"delta": 3}, {"delta": 5}])``)."""

    def __init__(self, delta: dt.timedelta | float, *, end_from_trigger: bool = False) -> None:
        super().__init__(dt.datetime.now(dt.UTC) + _as_delta(delta, call="TimeDeltaTrigger"), end_from_trigger=end_from_trigger)


class FileTrigger(BaseTrigger):
    """Fires when a file matching ``filepath`` (a glob) exists; checks every ``poke_interval`` s."""

    def __init__(self, filepath: str, poke_interval: float = 5.0, recursive: bool = False) -> None:
        super().__init__()
        if not isinstance(filepath, str) or not filepath:
            raise TypeError(f"FileTrigger: filepath must be a non-empty string, not {filepath!r}")
        self.filepath = filepath
        self.poke_interval = float(poke_interval)
        self.recursive = recursive

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return classpath_of(FileTrigger), {"filepath": self.filepath, "poke_interval": self.poke_interval,
                                           "recursive": self.recursive}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            for path in glob.glob(self.filepath, recursive=self.recursive):
                if os.path.isfile(path):
                    log.info("Found %s", path)
                    yield TriggerEvent(path)
                    return
            await asyncio.sleep(self.poke_interval)


def build_trigger(classpath: str, kwargs: dict[str, Any]) -> BaseTrigger:
    """The trigger a stored ``(classpath, encoded kwargs)`` stands for."""
    cls = import_string(classpath)
    if not (isinstance(cls, type) and issubclass(cls, BaseTrigger)):
        raise TypeError(f"{classpath!r} is not a BaseTrigger subclass")
    trigger: BaseTrigger = cls(**decode_kwargs(kwargs))
    return trigger
