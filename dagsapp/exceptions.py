from __future__ import annotations

from datetime import timedelta
from typing import Any


class DagsappError(Exception):
    """Base class of every error raised while authoring or resolving a DAG."""


class DagDefinitionError(DagsappError):
    """A DAG file describes something impossible (cycle, duplicate id, bad argument)."""


class DuplicateTaskIdFound(DagDefinitionError):
    def __init__(self, task_id: str, dag_id: str) -> None:
        self.task_id = task_id
        self.dag_id = dag_id
        super().__init__(f"Task id {task_id!r} has already been added to the DAG {dag_id!r}")


class DagCycleError(DagDefinitionError):
    def __init__(self, dag_id: str, cycle: list[str]) -> None:
        self.dag_id = dag_id
        self.cycle = cycle
        super().__init__(f"Cycle detected in DAG {dag_id!r}: {' >> '.join(cycle)}")


class MappingError(DagsappError):
    """An expand input cannot be built or resolved."""


class UnmappableArgument(MappingError, TypeError):
    pass


class MapLengthNotReady(MappingError):
    """A length that the expansion needs is not known yet: the caller waits, never guesses."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"length of {what} is not known yet")


class UnmappableXComTypePushed(MappingError):
    def __init__(self, task_id: str, value: object) -> None:
        self.task_id = task_id
        super().__init__(
            f"Task {task_id!r} feeds a mapped task, so it must return a list or a dict, "
            f"not {type(value).__name__!r}"
        )


class UnmappableXComLengthPushed(MappingError):
    def __init__(self, task_id: str, length: int, limit: int) -> None:
        self.task_id = task_id
        self.length = length
        self.limit = limit
        super().__init__(
            f"Task {task_id!r} returned {length} items to map over, more than the limit of {limit} "
            f"(raise it with partial(max_map_length=...) on the mapped task or the MAX_MAP_LENGTH setting)"
        )


class AirflowSkipException(DagsappError):
    """Raised inside a task to end it as skipped (Airflow's name, kept for familiarity)."""


class AirflowFailException(DagsappError):
    """Raised inside a task to fail it at once, without retries."""


class TaskDeferred(BaseException):
    """Raised by ``BaseOperator.defer()``: the instance waits in the triggerer for ``trigger`` to
    fire, freeing its worker slot; a worker then calls ``method_name(context, event=..., **kwargs)``.

    A BaseException, as in Airflow: a task's ``except Exception`` must not swallow it.
    """

    def __init__(self, *, trigger: Any, method_name: str, kwargs: dict[str, Any] | None = None,
                 timeout: timedelta | float | None = None) -> None:
        super().__init__()
        self.trigger = trigger
        self.method_name = method_name
        self.kwargs = kwargs
        if timeout is not None and not isinstance(timeout, timedelta):
            timeout = timedelta(seconds=float(timeout))
        self.timeout: timedelta | None = timeout

    def __repr__(self) -> str:
        return f"<TaskDeferred trigger={self.trigger!r} method={self.method_name}>"


class TaskDeferralError(DagsappError):
    """The trigger of a deferred instance failed (raised, or ended without an event)."""


class TaskDeferralTimeout(TaskDeferralError):
    """A deferred instance waited longer than its ``timeout``."""


class AirflowSensorTimeout(DagsappError):
    """A sensor waited longer than its ``timeout``; with ``soft_fail`` it is skipped instead."""
