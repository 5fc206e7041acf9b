"""Starting a task in the triggerer (``start_from_trigger``), decided per index from the serialized DAG.

Airflow never runs a mapped operator's ``__init__`` in the scheduler, so it only honours
``start_from_trigger`` and ``trigger_kwargs`` passed literally, and resolves no XCom for them.
Here the serialized task carries what the decision needs (``StartTriggerData``): the trigger
class and the names its constructor accepts, the class-level defaults, what ``partial`` gave
(literals, typed, or references to upstream results, params and Variables) and which of
``start_from_trigger`` / ``trigger_kwargs`` / ``next_kwargs`` the expand input gives per index.
``resolve_start`` answers for one ``map_index`` with the same ``resolve_spec`` the scheduler and
the workers use for every mapped argument, so an upstream's result, ``.zip``, ``.concat``,
``ParamRef`` and ``VariableRef`` all work. What only user code can resolve (``.map(f)``) raises
``NotResolvableHere``: that index goes to a worker, which resolves it and defers at once.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from dagsapp.baseoperator import BaseOperator, MappedOperator
from dagsapp.exceptions import MappingError
from dagsapp.expandinput import DictOfListsExpandInput, ExpandInput, MappingInfo, NotResolvableHere, resolve_spec
from dagsapp.taskmixin import Node
from dagsapp.triggers import BaseTrigger, decode_value, encode_value, import_string, trigger_params
from dagsapp.xcom_arg import MappedArgument, MappingResolver, ValueRef, XComArg, serialize_source

if TYPE_CHECKING:
    from dagsapp.serialization import ExpandInputSpec, Source

START_KEYS = ("start_from_trigger", "trigger_kwargs", "next_kwargs")


class ValueSpec(TypedDict):
    """One value the scheduler needs: a literal (typed, ``dagsapp.triggers.encode_value``), or
    where to read it (``src``: an upstream's result, a param or a Variable)."""

    v: NotRequired[Any]
    src: NotRequired[Source]


class StartTriggerData(TypedDict):
    trigger_cls: str
    # The trigger constructor's keyword names (None: not importable at parse time, or **kwargs),
    # and those without a default.
    trigger_params: list[str] | None
    trigger_required: list[str]
    next_method: str
    timeout: float | None  # seconds
    defaults: dict[str, ValueSpec]
    # Which of START_KEYS the expand input gives per index ("*": expand_kwargs, any of them).
    mapped: list[str]
    # The expand input again, with its literal lists stored typed (a timedelta stays one).
    input: NotRequired[ExpandInputSpec]


class StartTriggerError(MappingError):
    """A start-from-trigger instance whose trigger arguments are wrong; names task, index and key."""


def _trigger_signature(classpath: str) -> tuple[list[str] | None, list[str]]:
    try:
        cls = import_string(classpath)
    except Exception:  # noqa: BLE001 - a trigger importable only in the triggerer is checked there
        return None, []
    if not (isinstance(cls, type) and issubclass(cls, BaseTrigger)):
        return None, []
    import inspect

    names = trigger_params(cls)
    required: list[str] = []
    init = next((k.__dict__["__init__"] for k in cls.__mro__ if "__init__" in k.__dict__ and k is not BaseTrigger), None)
    if init is not None and init is not object.__init__:
        for p in inspect.signature(init).parameters.values():
            if p.name != "self" and p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                required.append(p.name)
            if p.kind is p.VAR_KEYWORD:
                names = None
    return names, required


def _value_spec(value: Any) -> ValueSpec | None:
    """None when only a worker can resolve it."""
    if isinstance(value, (XComArg, ValueRef)):
        src = serialize_source(value)
        if src["t"] == "xcom" and not src.get("mapped") or src["t"] in ("param", "variable"):
            return {"src": src}
        return None
    if isinstance(value, MappedArgument):
        return None
    try:
        return {"v": encode_value(value)}
    except TypeError:
        return None


def _typed_input(expand_input: ExpandInput, spec: ExpandInputSpec) -> ExpandInputSpec:
    """``spec`` with each literal list/dict stored typed, so the scheduler can read item i."""
    typed = copy.deepcopy(spec)

    def store(src: Source, live: Any) -> None:
        if src["t"] == "literal" and isinstance(live, (list, tuple, dict)):
            try:
                if isinstance(live, dict):
                    src["pairs"] = [[k, encode_value(v)] for k, v in live.items()]
                else:
                    src["items"] = [encode_value(v) for v in live]
            except TypeError:
                src.pop("items", None)
                src.pop("pairs", None)
        elif src["t"] in ("zip", "concat"):
            for sub, sub_live in zip(src["args"], live.args, strict=True):  # type: ignore[typeddict-item]
                store(sub, sub_live)

    if isinstance(expand_input, DictOfListsExpandInput):
        assert typed["type"] == "dict_of_lists"
        for name, live in expand_input.value.items():
            store(typed["args"][name], live)
    else:
        assert typed["type"] == "list_of_dicts"
        store(typed["source"], expand_input.value)
    return typed


def start_trigger_data(task: Node, input_spec: ExpandInputSpec | None) -> StartTriggerData | None:
    """What the scheduler needs to start the task's instances in the triggerer; None when the task
    can never start from a trigger (so DAGs without deferral keep their serialized hash)."""
    if isinstance(task, MappedOperator):
        args = task.operator_class.start_trigger_args
        if args is None:
            return None
        given = {k: task.partial_kwargs[k] for k in START_KEYS if k in task.partial_kwargs}
        defaults: dict[str, Any] = {"start_from_trigger": task.operator_class.start_from_trigger,
                                    "trigger_kwargs": args.trigger_kwargs, "next_kwargs": args.next_kwargs}
        defaults.update(given)
        if isinstance(task.expand_input, DictOfListsExpandInput):
            mapped = [k for k in START_KEYS if k in task.expand_input.value]
        else:
            mapped = ["*"]
        if not mapped and defaults["start_from_trigger"] is False:
            return None
    elif isinstance(task, BaseOperator):
        args = task.start_trigger_args
        if args is None or not task.start_from_trigger:
            return None
        defaults = {"start_from_trigger": True, "trigger_kwargs": args.trigger_kwargs, "next_kwargs": args.next_kwargs}
        mapped = []
    else:
        return None
    specs: dict[str, ValueSpec] = {}
    for key, value in defaults.items():
        spec = _value_spec(value)
        if spec is not None:
            specs[key] = spec
    params, required = _trigger_signature(args.classpath)
    data: StartTriggerData = {
        "trigger_cls": args.classpath, "trigger_params": params, "trigger_required": required,
        "next_method": args.next_method, "timeout": args.timeout_seconds, "defaults": specs, "mapped": mapped,
    }
    if mapped and isinstance(task, MappedOperator) and input_spec is not None:
        data["input"] = _typed_input(task.expand_input, input_spec)
    return data


@dataclass
class StartDecision:
    """For one index: whether it starts in the triggerer, and with what (kwargs typed, not encoded)."""

    start: bool
    trigger_kwargs: dict[str, Any] | None
    next_kwargs: dict[str, Any] | None
    mapping: MappingInfo | None


def _read(spec: ValueSpec, resolver: MappingResolver) -> Any:
    if "src" in spec:
        src = spec["src"]
        if src["t"] == "xcom":
            return resolver.xcom_value(src["task_id"], mapped=False)
        if src["t"] in ("param", "variable"):
            return resolver.ref_value(src["t"], src["key"])  # type: ignore[typeddict-item]
        raise NotResolvableHere(f"{src['t']} needs a worker")
    return decode_value(spec.get("v"))


def resolve_start(data: StartTriggerData, resolver: MappingResolver, map_index: int, *, task_id: str) -> StartDecision:
    """Index ``map_index`` (-1: an unmapped task) of a task that may start from its trigger.

    Raises ``NotResolvableHere`` when only a worker can tell (``.map(f)``, a value the scheduler
    could not store), and ``StartTriggerError`` when the arguments are wrong.
    """
    values: dict[str, Any] = {}
    for key in START_KEYS:
        if key in data["defaults"]:
            values[key] = _read(data["defaults"][key], resolver)
        elif key != "next_kwargs":
            # Given to partial() as something the scheduler cannot read: only a worker can tell.
            raise NotResolvableHere(f"{key} is not known to the scheduler")
    info: MappingInfo | None = None
    if data["mapped"] and map_index >= 0:
        if "input" not in data:
            raise NotResolvableHere("the expand input was not stored")
        info = resolve_spec(data["input"], resolver, map_index)
        for key in START_KEYS:
            if key in info.kwargs and (key in data["mapped"] or "*" in data["mapped"]):
                values[key] = decode_value(info.kwargs[key])
    start = values.get("start_from_trigger")
    if not isinstance(start, bool):
        raise StartTriggerError(f"task {task_id!r} index {map_index}: start_from_trigger must be True or False, not {start!r}")
    trigger_kwargs = values.get("trigger_kwargs")
    next_kwargs = values.get("next_kwargs")
    if start:
        check_trigger_kwargs(data, trigger_kwargs, task_id=task_id, map_index=map_index)
        if next_kwargs is not None and not isinstance(next_kwargs, dict):
            raise StartTriggerError(f"task {task_id!r} index {map_index}: next_kwargs must be a dict, not {type(next_kwargs).__name__!r}")
    return StartDecision(start=start, trigger_kwargs=trigger_kwargs, next_kwargs=next_kwargs, mapping=info)


def check_trigger_kwargs(data: StartTriggerData, kwargs: Any, *, task_id: str, map_index: int) -> None:
    where = f"task {task_id!r} index {map_index}"
    name = data["trigger_cls"].rsplit(".", 1)[-1]
    if kwargs is None:
        raise NotResolvableHere("trigger_kwargs are made by the operator's __init__")
    if not isinstance(kwargs, dict):
        raise StartTriggerError(f"{where}: trigger_kwargs must be a dict, not {type(kwargs).__name__!r}")
    accepted = data["trigger_params"]
    for key, value in kwargs.items():
        if not isinstance(key, str):
            raise StartTriggerError(f"{where}: trigger_kwargs key {key!r} is not a string")
        if accepted is not None and key not in accepted:
            raise StartTriggerError(f"{where}: trigger_kwargs key {key!r} is not accepted by {name} "
                                    f"(it takes {', '.join(accepted) or 'no arguments'})")
        try:
            encode_value(value)
        except TypeError as exc:
            raise StartTriggerError(f"{where}: trigger_kwargs key {key!r} cannot be stored: {exc}") from None
    missing = [k for k in data["trigger_required"] if k not in kwargs]
    if missing:
        raise StartTriggerError(f"{where}: trigger_kwargs lacks {missing[0]!r}, which {name} requires")
