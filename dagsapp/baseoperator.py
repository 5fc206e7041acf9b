from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from dagsapp.context import Context
from dagsapp.exceptions import TaskDeferralError, TaskDeferralTimeout, TaskDeferred, UnmappableArgument
from dagsapp.expandinput import DictOfListsExpandInput, ExpandInput, ListOfDictsExpandInput
from dagsapp.ids import validate_id
from dagsapp.taskmixin import Node
from dagsapp.tolerance import TOLERANCE_PARAMS, Tolerance, pop_tolerance, reject_tolerance
from dagsapp.trigger_rule import TriggerRule
from dagsapp.triggers import BaseTrigger, StartTriggerArgs
from dagsapp.xcom_arg import MappedArgument, PlainXComArg, ValueRef, XComArg

if TYPE_CHECKING:
    from dagsapp.dag import DAG
    from dagsapp.taskgroup import TaskGroup

# Arguments that configure the task as a whole: one value for all instances, so never mappable.
TASK_PARAMS: dict[str, Any] = {
    "task_id": None,
    "retries": 0,
    "retry_delay": timedelta(seconds=1),
    "trigger_rule": TriggerRule.ALL_SUCCESS,
    "map_index_template": None,
    "max_active_tis_per_dagrun": None,
    "max_map_length": None,
    "do_xcom_push": True,
    "execution_timeout": None,
    "doc_md": None,
    "owner": "airflow",
}
_CONTEXT_PARAMS = {"dag", "task_group", "default_args"}
EXPANDABLE_TYPES = (list, tuple, dict, XComArg, ValueRef, MappedArgument)


def init_params(cls: type) -> tuple[set[str], bool]:
    """Keyword names the operator class's constructors accept, and whether it takes arbitrary keywords.

    The flag is always False: a subclass's ``**kwargs`` is forwarded to its parent (the Airflow
    convention) and BaseOperator rejects whatever reaches it, so counting ``**kwargs`` would let
    ``BashOperator.partial(task_id=..., foo=1)`` through at parse time only to fail at run time.
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for p in inspect.signature(getattr(init, "__wrapped__", init)).parameters.values():
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self":
                names.add(p.name)
        if klass is BaseOperator:
            break
    return names, False


def _apply_default_args(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if not getattr(self, "_defaults_applied", False):
            # Only the outermost __init__ of a subclass chain merges default_args.
            self.__dict__["_defaults_applied"] = True
            kwargs = merge_default_args(type(self), kwargs)
        init(self, *args, **kwargs)

    return wrapper


def merge_default_args(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    from dagsapp.dag import DagContext

    dag = kwargs.get("dag") or DagContext.current()
    defaults: dict[str, Any] = dict(dag.default_args) if dag is not None else {}
    defaults.update(kwargs.pop("default_args", None) or {})
    if not defaults:
        return kwargs
    accepted, _ = init_params(cls)
    merged = dict(kwargs)
    for key, value in defaults.items():
        if key in accepted and key not in merged:
            merged[key] = value
    return merged


def iter_references(value: Any) -> Iterator[XComArg]:
    """XComArgs nested anywhere in an argument value: each one is an upstream dependency."""
    if isinstance(value, XComArg):
        yield value
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from iter_references(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_references(v)


class BaseOperator(Node):
    """Subclass and implement ``execute(context)``; its return value becomes the task's XCom."""

    template_fields: ClassVar[tuple[str, ...]] = ()
    template_ext: ClassVar[tuple[str, ...]] = ()
    ui_color: ClassVar[str] = "#fff"
    # Start in the triggerer, without a worker (Airflow's start_from_trigger): the trigger and
    # what to call on its event. A class attribute; each instance gets a copy of its own, so the
    # pattern ``self.start_trigger_args.trigger_kwargs = ...`` in __init__ changes only that task.
    start_trigger_args: StartTriggerArgs | None = None
    start_from_trigger: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _apply_default_args(cls.__dict__["__init__"])  # type: ignore[method-assign]

    # Wrapped too: an operator without its own __init__ (EmptyOperator, most user operators) must
    # still get the DAG's default_args such as retries.
    @_apply_default_args
    def __init__(
        self,
        *,
        task_id: str,
        retries: int = 0,
        retry_delay: timedelta | float = timedelta(seconds=1),
        trigger_rule: str = TriggerRule.ALL_SUCCESS,
        map_index_template: str | None = None,
        max_active_tis_per_dagrun: int | None = None,
        max_map_length: int | None = None,
        do_xcom_push: bool = True,
        execution_timeout: timedelta | None = None,
        doc_md: str | None = None,
        owner: str = "airflow",
        dag: DAG | None = None,
        task_group: TaskGroup | None = None,
        _standalone: bool = False,
        **kwargs: Any,
    ) -> None:
        reject_tolerance(f"{type(self).__name__}()", kwargs, partial=f"{type(self).__name__}.partial()")
        if kwargs:
            raise TypeError(
                f"Invalid arguments were passed to {type(self).__name__} (task_id: {task_id}): "
                + ", ".join(sorted(kwargs))
            )
        validate_task_params(type(self).__name__, task_id=task_id, retries=retries, trigger_rule=trigger_rule)
        self._init_node()
        self.retries = int(retries)
        self.retry_delay = retry_delay if isinstance(retry_delay, timedelta) else timedelta(seconds=float(retry_delay))
        self.trigger_rule = TriggerRule(trigger_rule)
        self.map_index_template = map_index_template
        self.max_active_tis_per_dagrun = max_active_tis_per_dagrun
        self.max_map_length = max_map_length
        self.do_xcom_push = do_xcom_push
        self.execution_timeout = execution_timeout
        self.doc_md = doc_md
        self.owner = owner
        cls_args = type(self).start_trigger_args
        if cls_args is not None:
            self.start_trigger_args = copy.copy(cls_args)
            self.start_trigger_args.trigger_kwargs = copy.copy(cls_args.trigger_kwargs)
        if _standalone:
            # An unmapped copy built by the worker for one map_index: not part of any DAG.
            self.task_id, self.dag, self.task_group = task_id, None, None
            return
        # XComArgs in template fields become dependencies when the DAG is finalized: subclasses
        # set those attributes only after this constructor returns.
        register_node(self, call=type(self).__name__, task_id=task_id, dag=dag, task_group=task_group)

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        return OperatorPartial(cls, kwargs)

    def execute(self, context: Context) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def defer(self, *, trigger: BaseTrigger, method_name: str, kwargs: dict[str, Any] | None = None,
              timeout: timedelta | float | None = None) -> NoReturn:
        """Hand the wait to the triggerer and free this worker slot: when ``trigger`` fires, a worker
        builds the operator again and calls ``method_name(context, event=payload, **kwargs)``."""
        if not isinstance(trigger, BaseTrigger):
            raise TypeError(f"{type(self).__name__}.defer(): trigger must be a BaseTrigger, not {type(trigger).__name__!r}")
        if not isinstance(method_name, str) or not method_name:
            raise TypeError(f"{type(self).__name__}.defer(): method_name must be the name of a method")
        raise TaskDeferred(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """After the trigger: call ``next_method``, or raise why the deferral ended without an event."""
        next_kwargs = dict(next_kwargs or {})
        if next_method == "__fail__":
            error = next_kwargs.get("error", "Unknown")
            traceback = next_kwargs.get("traceback")
            if error == "Trigger timeout":
                raise TaskDeferralTimeout(error)
            raise TaskDeferralError(f"Trigger failure: {error}" + (f"\n{traceback}" if traceback else ""))
        method = getattr(self, next_method, None)
        if method is None or not callable(method):
            raise AttributeError(f"{type(self).__name__} has no method {next_method!r} to resume after its trigger")
        return method(context, **next_kwargs)

    def get_template_env(self):  # type: ignore[no-untyped-def]
        from dagsapp.templating import environment

        return environment()


def validate_task_params(call: str, *, task_id: Any, retries: Any = 0, trigger_rule: Any = TriggerRule.ALL_SUCCESS) -> None:
    validate_id(call, "task_id", task_id)
    if not isinstance(retries, int) or retries < 0:
        raise TypeError(f"{call}(): retries must be a non-negative int, not {retries!r}")
    try:
        TriggerRule(trigger_rule)
    except ValueError:
        raise ValueError(f"{call}(): {trigger_rule!r} is not a trigger rule; expected one of {', '.join(TriggerRule)}") from None


def register_node(node: Node, *, call: str, task_id: str, dag: DAG | None, task_group: TaskGroup | None) -> None:
    from dagsapp.dag import DagContext
    from dagsapp.taskgroup import TaskGroupContext

    dag = dag or DagContext.current()
    if task_group is None and dag is not None:
        task_group = TaskGroupContext.current(dag)
    node.dag = dag
    node.task_group = task_group
    node.task_id = task_group.child_id(task_id) if task_group is not None else task_id
    # The id checked alone by validate_task_params may grow too long with its groups' prefixes.
    validate_id(call, "task_id", task_id, full_id=node.task_id)
    if dag is not None:
        dag.add_task(node)
    if task_group is not None:
        task_group.add(node)


class OperatorPartial:
    """``SomeOperator.partial(task_id=..., **constant)``: waits for ``expand`` or ``expand_kwargs``."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> None:
        self.operator_class = operator_class
        name = f"{operator_class.__name__}.partial"
        kwargs = dict(kwargs)
        # Not operator arguments: how the mapped task tells its items apart (dagsapp.identity),
        # and how many failures it tolerates (dagsapp.tolerance).
        self.map_key = kwargs.pop("map_key", None)
        self.tolerance = pop_tolerance(f"{name}()", kwargs)
        self.kwargs = merge_default_args(operator_class, kwargs)
        if "task_id" not in self.kwargs:
            raise TypeError(f"{name}() needs a task_id")
        accepted, var_kw = init_params(operator_class)
        for key in self.kwargs:
            if key not in accepted and key not in _CONTEXT_PARAMS and not var_kw:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
        validate_task_params(name, task_id=self.kwargs["task_id"], retries=self.kwargs.get("retries", 0),
                             trigger_rule=self.kwargs.get("trigger_rule", TriggerRule.ALL_SUCCESS))
        self._expanded = False

    def _check_mappable(self, call: str, key: str) -> None:
        accepted, var_kw = init_params(self.operator_class)
        if key in TASK_PARAMS or key in _CONTEXT_PARAMS or key in TOLERANCE_PARAMS:
            raise UnmappableArgument(f"{call} cannot map over {key!r}: task-level arguments like {key!r} must go to partial()")
        if key in self.kwargs:
            raise UnmappableArgument(f"{call} got keyword argument {key!r} that was already given to partial()")
        if key not in accepted and not var_kw:
            raise UnmappableArgument(f"{call} got an unexpected keyword argument {key!r} for {self.operator_class.__name__}")

    def expand(self, **mapped_kwargs: Any) -> MappedOperator:
        call = f"{self.operator_class.__name__}.expand()"
        validate_expand_kwargs(call, mapped_kwargs)
        for key in mapped_kwargs:
            self._check_mappable(call, key)
        return self._build(DictOfListsExpandInput(mapped_kwargs))

    def expand_kwargs(self, value: Any) -> MappedOperator:
        call = f"{self.operator_class.__name__}.expand_kwargs()"
        validate_expand_kwargs_value(call, value)
        if isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, dict):
                    for key in item:
                        self._check_mappable(call, key)
        return self._build(ListOfDictsExpandInput(value))

    def _build(self, expand_input: ExpandInput) -> MappedOperator:
        if self._expanded:
            raise TypeError("a partial() can be expanded only once")
        self._expanded = True
        return MappedOperator(operator_class=self.operator_class, partial_kwargs=self.kwargs, expand_input=expand_input,
                              map_key=self.map_key, tolerance=self.tolerance)


def validate_expand_kwargs(call: str, mapped_kwargs: dict[str, Any]) -> None:
    if not mapped_kwargs:
        raise TypeError(f"{call} needs at least one keyword argument to map over")
    for key, value in mapped_kwargs.items():
        if not isinstance(value, EXPANDABLE_TYPES):
            raise UnmappableArgument(f"{call} got an unexpected type {type(value).__name__!r} for keyword argument {key}")


def validate_expand_kwargs_value(call: str, value: Any) -> None:
    if isinstance(value, (XComArg, ValueRef, MappedArgument)):
        return
    if not isinstance(value, (list, tuple)):
        raise UnmappableArgument(f"{call} expects a list of dicts or an XComArg, not {type(value).__name__!r}")
    for i, item in enumerate(value):
        if not isinstance(item, (dict, XComArg)):
            raise UnmappableArgument(f"{call} expects a list of dicts, but item {i} is {type(item).__name__!r}")
        if isinstance(item, dict):
            bad = [k for k in item if not isinstance(k, str)]
            if bad:
                raise UnmappableArgument(f"{call}: item {i} has a non-string key {bad[0]!r}")


class MappedOperator(Node):
    """A task that runs once per item of its expand input, as ``map_index`` 0..N-1."""

    # Set from partial() or TASK_PARAMS' defaults in __init__.
    trigger_rule: TriggerRule
    retry_delay: timedelta

    def __init__(
        self,
        *,
        operator_class: type[BaseOperator],
        partial_kwargs: dict[str, Any],
        expand_input: ExpandInput,
        mapped_into: str | None = None,
        map_key: Callable[[Any], Any] | None = None,
        tolerance: Tolerance | None = None,
    ) -> None:
        from dagsapp.dag import DagContext
        from dagsapp.identity import validate_map_key
        from dagsapp.taskgroup import TaskGroupContext

        if map_key is not None:
            validate_map_key(f"{partial_kwargs['task_id']}.partial(map_key=...)", map_key, expand_input)
        self.map_key = map_key
        self._init_node()
        self.operator_class = operator_class
        self.partial_kwargs = {k: v for k, v in partial_kwargs.items() if k not in _CONTEXT_PARAMS}
        self.expand_input = expand_input
        # Where mapped values go: constructor kwargs (classic operators) or op_kwargs (@task).
        self.mapped_into = mapped_into
        # partial(max_failed_ratio=..., max_failed_count=...): failures its downstream tolerates.
        self.tolerance = tolerance
        for key, default in TASK_PARAMS.items():
            if key != "task_id":
                setattr(self, key, self.partial_kwargs.get(key, default))
        self.trigger_rule = TriggerRule(self.trigger_rule)
        if not isinstance(self.retry_delay, timedelta):
            self.retry_delay = timedelta(seconds=float(self.retry_delay))
        dag = partial_kwargs.get("dag") or DagContext.current()
        group = partial_kwargs.get("task_group") or (TaskGroupContext.current(dag) if dag else None)
        register_node(self, call=f"{operator_class.__name__}.partial", task_id=partial_kwargs["task_id"], dag=dag, task_group=group)
        for src in expand_input.iter_sources():
            for ref in iter_references(src):
                self.set_upstream(ref)
        for value in self.partial_kwargs.values():
            for ref in iter_references(value):
                self.set_upstream(ref)

    @property
    def is_mapped(self) -> bool:
        return True

    @property
    def template_fields(self) -> tuple[str, ...]:
        return self.operator_class.template_fields

    @property
    def output(self) -> PlainXComArg:
        return PlainXComArg(self)

    def unmap(self, mapped_kwargs: dict[str, Any]) -> BaseOperator:
        """A plain operator for one instance, built with that instance's resolved arguments."""
        kwargs = dict(self.partial_kwargs)
        kwargs.pop("task_id", None)
        if self.mapped_into:
            kwargs[self.mapped_into] = {**kwargs.get(self.mapped_into, {}), **mapped_kwargs}
        else:
            kwargs.update(mapped_kwargs)
        op = self.operator_class(task_id=self.task_id, _standalone=True, **kwargs)
        return op
