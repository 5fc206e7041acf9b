from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dagsapp.exceptions import DagCycleError, DagDefinitionError, DuplicateTaskIdFound
from dagsapp.ids import validate_id
from dagsapp.params import split_params
from dagsapp.schedules import normalize_schedule
from dagsapp.taskgroup import TaskGroup
from dagsapp.taskmixin import Node
from dagsapp.xcom_arg import ParamRef


class DagContext:
    _stack: list[DAG] = []
    # Set by the loader while a file is imported, so DAGs are found even when not assigned to a name.
    collected: list[DAG] | None = None

    @classmethod
    def push(cls, dag: DAG) -> None:
        cls._stack.append(dag)

    @classmethod
    def pop(cls) -> None:
        cls._stack.pop()

    @classmethod
    def current(cls) -> DAG | None:
        return cls._stack[-1] if cls._stack else None


class DAG:
    def __init__(
        self,
        dag_id: str,
        *,
        description: str | None = None,
        schedule: Any = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        catchup: bool = False,
        params: dict[str, Any] | None = None,
        default_args: dict[str, Any] | None = None,
        max_active_runs: int = 16,
        tags: list[str] | None = None,
        doc_md: str | None = None,
    ) -> None:
        validate_id("DAG", "dag_id", dag_id)
        self.dag_id = dag_id
        self.description = description
        self.schedule = normalize_schedule(dag_id, schedule)
        self.start_date = _aware(start_date)
        self.end_date = _aware(end_date)
        self.catchup = catchup
        # Plain defaults (what tasks read) and, for Params, their JSON schemas (the trigger form).
        self.params, self.param_specs = split_params(dag_id, params or {}, scheduled=self.schedule is not None)
        self.default_args = dict(default_args or {})
        if max_active_runs < 1:
            raise ValueError(f"DAG {dag_id!r}: max_active_runs must be at least 1")
        self.max_active_runs = max_active_runs
        self.tags = list(tags or [])
        self.doc_md = doc_md
        self.fileloc: str | None = None
        self.task_dict: dict[str, Node] = {}
        self.task_groups: dict[str, TaskGroup] = {}
        self.task_group = TaskGroup(None, dag=self, _root=True)
        if self.schedule is not None and self.schedule != "@once" and self.start_date is None:
            self.start_date = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if DagContext.collected is not None:
            DagContext.collected.append(self)
        try:
            self.fileloc = inspect.stack()[1].filename
        except Exception:  # noqa: BLE001 - introspection is best effort
            self.fileloc = None

    def __enter__(self) -> DAG:
        DagContext.push(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        DagContext.pop()

    def add_task(self, task: Node) -> None:
        if task.task_id in self.task_dict:
            raise DuplicateTaskIdFound(task.task_id, self.dag_id)
        self.task_dict[task.task_id] = task

    @property
    def tasks(self) -> list[Node]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def get_task(self, task_id: str) -> Node:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise KeyError(f"Task {task_id!r} not found in DAG {self.dag_id!r}") from None

    def finalize(self) -> None:
        """Wire dependencies implied by arguments, then check the graph is a DAG."""
        from dagsapp.baseoperator import BaseOperator, iter_references

        for task in self.tasks:
            if isinstance(task, BaseOperator):
                for field in task.template_fields:
                    for ref in iter_references(getattr(task, field, None)):
                        task.set_upstream(ref)
        self.topological_task_ids()

    def topological_task_ids(self) -> list[str]:
        """Tasks in dependency order, ties broken by definition order (the order of Grid rows)."""
        order = list(self.task_dict)
        position = {t: i for i, t in enumerate(order)}
        indegree = {t: len(self.task_dict[t].upstream_task_ids) for t in order}
        for t in order:
            missing = self.task_dict[t].upstream_task_ids - self.task_dict.keys()
            if missing:
                raise DagDefinitionError(f"Task {t!r} depends on {sorted(missing)[0]!r}, which is not in DAG {self.dag_id!r}")
        import heapq

        ready = [position[t] for t in order if indegree[t] == 0]
        heapq.heapify(ready)
        result: list[str] = []
        while ready:
            t = order[heapq.heappop(ready)]
            result.append(t)
            for d in self.task_dict[t].downstream_task_ids:
                indegree[d] -= 1
                if indegree[d] == 0:
                    heapq.heappush(ready, position[d])
        if len(result) != len(order):
            raise DagCycleError(self.dag_id, self._find_cycle(set(order) - set(result)))
        return result

    def _find_cycle(self, remaining: set[str]) -> list[str]:
        # Walk upstream: every unsorted task has an unsorted upstream (else it would have been
        # sorted), but a task merely downstream of a cycle may have no unsorted downstream.
        start = min(remaining)
        path = [start]
        seen = {start}
        node = start
        while True:
            node = min(u for u in self.task_dict[node].upstream_task_ids if u in remaining)
            if node in seen:
                cycle = path[path.index(node):] + [node]
                cycle.reverse()
                return cycle
            path.append(node)
            seen.add(node)

    def __repr__(self) -> str:
        return f"<DAG {self.dag_id}>"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def dag(dag_id: str | Callable[..., Any] | None = None, **dag_kwargs: Any) -> Any:
    """``@dag`` / ``@dag(schedule=...)``: calling the decorated function builds the DAG.

    The function's parameters become DAG params; inside it they are ``ParamRef``s, so a task
    receives the run's conf value (or the default) at run time, as with Airflow's DagParam.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., DAG]:
        @functools.wraps(func)
        def factory(*args: Any, **kwargs: Any) -> DAG:
            kw = dict(dag_kwargs)
            sig = inspect.signature(func)
            params = dict(kw.pop("params", None) or {})
            bound = sig.bind_partial(*args, **kwargs)
            for name, p in sig.parameters.items():
                if name in bound.arguments:
                    params[name] = bound.arguments[name]
                elif p.default is not inspect.Parameter.empty:
                    params.setdefault(name, p.default)
            the_dag = DAG(dag_id if isinstance(dag_id, str) else func.__name__, params=params or None,
                          doc_md=kw.pop("doc_md", func.__doc__), **kw)
            the_dag.fileloc = inspect.getsourcefile(func)
            with the_dag:
                func(**{name: ParamRef(name) for name in sig.parameters})
            return the_dag

        return factory

    if callable(dag_id):
        func, dag_id = dag_id, None
        return decorator(func)
    return decorator
