"""TaskFlow: ``@task`` and ``@task_group``, with ``partial`` / ``expand`` / ``expand_kwargs``."""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from dagsapp.baseoperator import (
    TASK_PARAMS,
    MappedOperator,
    iter_references,
    validate_expand_kwargs,
    validate_expand_kwargs_value,
    validate_task_params,
)
from dagsapp.dag import DagContext
from dagsapp.dependencies import DependencyMixin
from dagsapp.exceptions import UnmappableArgument
from dagsapp.expandinput import DictOfListsExpandInput, ExpandInput, ListOfDictsExpandInput
from dagsapp.operators import DecoratedPythonOperator
from dagsapp.taskgroup import TaskGroup, TaskGroupContext
from dagsapp.tolerance import TOLERANCE_PARAMS, pop_tolerance, reject_tolerance
from dagsapp.trigger_rule import TriggerRule
from dagsapp.xcom_arg import MappedArgument, PlainXComArg, ValueRef, XComArg

# Keys of the template context a TaskFlow function may declare as parameters.
CONTEXT_KEYS = frozenset({
    "ti", "task_instance", "dag", "dag_run", "params", "ds", "ds_nodash", "ts", "logical_date", "run_id",
    "map_index", "mapping", "task", "conf", "var", "data_interval_start", "data_interval_end", "templates_dict",
    "try_number", "dag_id", "task_id",
})


class _Signature:
    def __init__(self, func: Callable[..., Any]) -> None:
        self.name = func.__name__
        self.params = inspect.signature(func).parameters
        self.var_kw = any(p.kind is p.VAR_KEYWORD for p in self.params.values())

    def check_names(self, call: str, names: list[str]) -> None:
        for name in names:
            if name not in self.params and not self.var_kw:
                raise TypeError(f"{call} got an unexpected keyword argument {name!r}")

    def check_complete(self, call: str, given: set[str]) -> None:
        missing = [
            n for n, p in self.params.items()
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and n not in given and n not in CONTEXT_KEYS
        ]
        if missing:
            raise TypeError(f"{call} is missing required argument {missing[0]!r} for {self.name}()")


def _unique_id(base: str, kind: str) -> str:
    """Calling the same @task twice in one DAG gives ``add``, ``add__1``, ``add__2`` as in Airflow."""
    dag = DagContext.current()
    if dag is None:
        raise RuntimeError(f"{kind} {base!r} must be called inside a DAG (a `with DAG(...)` block or an @dag function)")
    group = TaskGroupContext.current(dag)
    taken = dag.task_dict if kind == "task" else dag.task_groups
    if group.child_id(base) not in taken:
        return base
    core = base.rsplit("__", 1)[0] if "__" in base and base.rsplit("__", 1)[1].isdigit() else base
    i = 1
    while group.child_id(f"{core}__{i}") in taken:
        i += 1
    return f"{core}__{i}"


class _TaskDecorator:
    def __init__(self, function: Callable[..., Any], task_kwargs: dict[str, Any]) -> None:
        if not callable(function):
            raise TypeError(f"@task must decorate a function, not {type(function).__name__!r}")
        self.function = function
        self.task_kwargs = dict(task_kwargs)
        self.sig = _Signature(function)
        reject_tolerance("@task()", self.task_kwargs, partial=f"{function.__name__}.partial()")
        unknown = set(self.task_kwargs) - set(TASK_PARAMS) - {"multiple_outputs"}
        if unknown:
            raise TypeError(f"@task got an unexpected keyword argument {sorted(unknown)[0]!r}")
        self.task_kwargs.pop("multiple_outputs", None)
        if self.task_kwargs.get("doc_md") is None and function.__doc__:
            # As in Airflow: a @task's docstring is its documentation, shown in the task's panel.
            self.task_kwargs["doc_md"] = inspect.cleandoc(function.__doc__)
        functools.update_wrapper(self, function)

    def override(self, **task_kwargs: Any) -> _TaskDecorator:
        return _TaskDecorator(self.function, {**self.task_kwargs, **task_kwargs})

    def _task_id(self, extra: dict[str, Any]) -> str:
        return _unique_id(extra.get("task_id") or self.task_kwargs.get("task_id") or self.function.__name__, "task")

    def __call__(self, *args: Any, **kwargs: Any) -> PlainXComArg:
        try:
            bound = inspect.signature(self.function).bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.function.__name__}(): {exc}") from None
        self.sig.check_complete(f"{self.function.__name__}()", set(bound.arguments))
        task_kwargs = {k: v for k, v in self.task_kwargs.items() if k != "task_id"}
        op = DecoratedPythonOperator(
            task_id=self._task_id({}), python_callable=self.function, op_args=args, op_kwargs=kwargs, **task_kwargs
        )
        # Wired now rather than at finalize(): a task group's roots and leaves, read by the next
        # `>>`, must already see the edges between the tasks inside it.
        for ref in iter_references([args, kwargs]):
            op.set_upstream(ref)
        return PlainXComArg(op)

    def partial(self, **kwargs: Any) -> _TaskPartial:
        return _TaskPartial(self, kwargs)

    def expand(self, **mapped: Any) -> PlainXComArg:
        return self.partial().expand(**mapped)

    def expand_kwargs(self, value: Any) -> PlainXComArg:
        return self.partial().expand_kwargs(value)


class _TaskPartial:
    def __init__(self, decorator: _TaskDecorator, kwargs: dict[str, Any]) -> None:
        self.decorator = decorator
        name = decorator.function.__name__
        kwargs = dict(kwargs)
        # Not arguments of the function: how the mapped task tells its items apart (dagsapp.identity),
        # and how many failures it tolerates (dagsapp.tolerance).
        self.map_key = kwargs.pop("map_key", None)
        self.tolerance = pop_tolerance(f"{name}.partial()", kwargs)
        self.task_kwargs = {**decorator.task_kwargs, **{k: v for k, v in kwargs.items() if k in TASK_PARAMS}}
        self.op_kwargs = {k: v for k, v in kwargs.items() if k not in TASK_PARAMS}
        decorator.sig.check_names(f"{name}.partial()", list(self.op_kwargs))
        self._used = False

    def _check_key(self, call: str, key: str) -> None:
        if key in TASK_PARAMS or key in TOLERANCE_PARAMS:
            raise UnmappableArgument(f"{call} cannot map over {key!r}: task-level arguments like {key!r} must go to partial()")
        if key in self.op_kwargs:
            raise UnmappableArgument(f"{call} got keyword argument {key!r} that was already given to partial()")
        self.decorator.sig.check_names(call, [key])

    def _check_not_always(self, call: str, method: str, values: Iterable[Any]) -> None:
        # As Airflow does: under 'always' the task could run, and so expand, before the upstream
        # whose result it maps over has one.
        if self.task_kwargs.get("trigger_rule") == TriggerRule.ALWAYS and any(isinstance(v, XComArg) for v in values):
            raise ValueError(f"{call}: task-generated mapping within a task using '{method}' is not allowed with trigger rule 'always'")

    def expand(self, **mapped: Any) -> PlainXComArg:
        call = f"{self.decorator.function.__name__}.expand()"
        self._check_not_always(call, "expand", mapped.values())
        validate_expand_kwargs(call, mapped)
        for key in mapped:
            self._check_key(call, key)
        self.decorator.sig.check_complete(call, set(self.op_kwargs) | set(mapped))
        return self._build(DictOfListsExpandInput(mapped))

    def expand_kwargs(self, value: Any) -> PlainXComArg:
        call = f"{self.decorator.function.__name__}.expand_kwargs()"
        if isinstance(value, (list, tuple)):
            # Only XComArgs inside a literal list count: expanding over a whole upstream result is allowed, as in Airflow.
            self._check_not_always(call, "expand_kwargs", (v for item in value if isinstance(item, dict) for v in item.values()))
        validate_expand_kwargs_value(call, value)
        if isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, dict):
                    for key in item:
                        self._check_key(call, key)
        return self._build(ListOfDictsExpandInput(value))

    def _build(self, expand_input: ExpandInput) -> PlainXComArg:
        if self._used:
            raise TypeError("a partial() can be expanded only once")
        self._used = True
        task_id = self.decorator._task_id(self.task_kwargs)
        validate_task_params(f"{self.decorator.function.__name__}.partial", task_id=task_id,
                             retries=self.task_kwargs.get("retries", 0),
                             trigger_rule=self.task_kwargs.get("trigger_rule", "all_success"))
        from dagsapp.baseoperator import merge_default_args

        partial_kwargs = merge_default_args(
            DecoratedPythonOperator,
            {**self.task_kwargs, "task_id": task_id, "python_callable": self.decorator.function, "op_kwargs": self.op_kwargs},
        )
        op = MappedOperator(
            operator_class=DecoratedPythonOperator, partial_kwargs=partial_kwargs, expand_input=expand_input,
            mapped_into="op_kwargs", map_key=self.map_key, tolerance=self.tolerance,
        )
        return PlainXComArg(op)


def task(python_callable: Callable[..., Any] | None = None, **task_kwargs: Any) -> Any:
    """``@task`` or ``@task(retries=2, ...)``: the function becomes a task when called in a DAG."""
    if python_callable is not None:
        return _TaskDecorator(python_callable, task_kwargs)
    return lambda f: _TaskDecorator(f, task_kwargs)


class _TaskGroupDecorator:
    def __init__(self, function: Callable[..., Any], group_kwargs: dict[str, Any]) -> None:
        self.function = function
        self.group_kwargs = dict(group_kwargs)
        self.sig = _Signature(function)
        functools.update_wrapper(self, function)

    def _group_id(self) -> str:
        return _unique_id(self.group_kwargs.get("group_id") or self.function.__name__, "group")

    def _new_group(self) -> TaskGroup:
        kwargs = {k: v for k, v in self.group_kwargs.items() if k != "group_id"}
        kwargs.setdefault("tooltip", (self.function.__doc__ or "").strip())
        return TaskGroup(self._group_id(), **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        group = self._new_group()
        with group:
            result = self.function(*args, **kwargs)
        return result if isinstance(result, DependencyMixin) else group

    def partial(self, **kwargs: Any) -> _TaskGroupPartial:
        return _TaskGroupPartial(self, kwargs)

    def expand(self, **mapped: Any) -> Any:
        return self.partial().expand(**mapped)

    def expand_kwargs(self, value: Any) -> Any:
        return self.partial().expand_kwargs(value)


class _TaskGroupPartial:
    def __init__(self, decorator: _TaskGroupDecorator, kwargs: dict[str, Any]) -> None:
        self.decorator = decorator
        kwargs = dict(kwargs)
        self.tolerance = pop_tolerance(f"{decorator.function.__name__}.partial()", kwargs)
        self.kwargs = kwargs
        decorator.sig.check_names(f"{decorator.function.__name__}.partial()", list(kwargs))

    def expand(self, **mapped: Any) -> Any:
        call = f"{self.decorator.function.__name__}.expand()"
        validate_expand_kwargs(call, mapped)
        for key in mapped:
            if key in self.kwargs:
                raise UnmappableArgument(f"{call} got keyword argument {key!r} that was already given to partial()")
        self.decorator.sig.check_names(call, list(mapped))
        return self._build(DictOfListsExpandInput(mapped), list(mapped))

    def expand_kwargs(self, value: Any) -> Any:
        call = f"{self.decorator.function.__name__}.expand_kwargs()"
        validate_expand_kwargs_value(call, value)
        names = [n for n in self.decorator.sig.params if n not in self.kwargs]
        return self._build(ListOfDictsExpandInput(value), names)

    def _build(self, expand_input: ExpandInput, mapped_names: list[str]) -> Any:
        group = self.decorator._new_group()
        group.expand_input = expand_input
        group.tolerance = self.tolerance
        args = {**self.kwargs, **{n: MappedArgument(expand_input, n, str(group.group_id)) for n in mapped_names}}
        with group:
            result = self.decorator.function(**args)
        # The group's first tasks wait for whatever its expand input reads.
        for src in expand_input.iter_sources():
            for ref in iter_references(src):
                ref >> group
        if isinstance(result, (XComArg, DependencyMixin)) and not isinstance(result, ValueRef):
            return result
        return group


def task_group(python_callable: Callable[..., Any] | None = None, **group_kwargs: Any) -> Any:
    if python_callable is not None:
        return _TaskGroupDecorator(python_callable, group_kwargs)
    return lambda f: _TaskGroupDecorator(f, group_kwargs)
