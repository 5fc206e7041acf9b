"""One task instance's view of its task: arguments resolved for its ``map_index``, templates rendered.

Values that came from XComs, conf or Variables are never rendered as templates (a result that
happens to contain ``{{`` is data, not a template); literal strings are, as in Airflow.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from dagsapp.baseoperator import BaseOperator, MappedOperator
from dagsapp.expandinput import ExpandInput, ListOfDictsExpandInput, MappingInfo
from dagsapp.taskmixin import Node
from dagsapp.templating import render_string
from dagsapp.xcom_arg import MappedArgument, MappingResolver, ResolveScope, ValueRef, XComArg


@dataclass
class PreparedInstance:
    operator: BaseOperator
    mapping: MappingInfo | None
    # ids of argument values that must not be rendered as templates
    data_ids: set[int] = field(default_factory=set)
    group_kwargs: dict[str, Any] = field(default_factory=dict)
    # Nested mapping: the arguments of each mapped group the instance is in, by group id.
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


def _data_kwarg_names(expand_input: ExpandInput) -> set[str]:
    if isinstance(expand_input, ListOfDictsExpandInput):
        return {"*"} if isinstance(expand_input.value, (XComArg, ValueRef, MappedArgument)) else set()
    return {k for k, v in expand_input.value.items() if isinstance(v, (XComArg, ValueRef, MappedArgument))}


def _data_ids(expand_input: ExpandInput, kwargs: dict[str, Any]) -> set[int]:
    names = _data_kwarg_names(expand_input)
    return {id(v) for k, v in kwargs.items() if "*" in names or k in names}


def _prepare_nested(task: Node, resolver: MappingResolver, map_index: int, path: list[int]) -> PreparedInstance:
    """One instance of a task in a DAG with nested mapping: each mapped group it is in resolves
    its item at the path's index for that level, outermost first, then the task's own expand."""
    scope = ResolveScope(resolver, consumer=task, map_index=map_index, nested=True)
    levels = task.mapping_levels()
    chain = task.task_group.mapped_chain() if task.task_group is not None else []
    groups: dict[str, dict[str, Any]] = {}
    data_ids: set[int] = set()
    info: MappingInfo | None = None
    for i, group in enumerate(chain):
        assert group.expand_input is not None and group.group_id is not None
        kwargs, info = group.expand_input.resolve(scope, path[i], outer_levels=levels[:i])
        groups[group.group_id] = kwargs
        data_ids |= _data_ids(group.expand_input, kwargs)
        # What an inner level maps over (a group argument) is this value, not one resolved again.
        known = getattr(resolver, "group_args", None)
        if isinstance(known, dict):
            known[group.group_id] = kwargs
    if isinstance(task, MappedOperator):
        kwargs, info = task.expand_input.resolve(scope, path[-1], outer_levels=levels[:-1])
        op = task.unmap(kwargs)
        return PreparedInstance(operator=op, mapping=info, data_ids=data_ids | _data_ids(task.expand_input, kwargs), groups=groups)
    assert isinstance(task, BaseOperator)
    inner = groups[str(chain[-1].group_id)] if chain else {}
    return PreparedInstance(operator=copy.copy(task), mapping=info, data_ids=data_ids, group_kwargs=inner, groups=groups)


def prepare_instance(task: Node, resolver: MappingResolver, map_index: int, *, path: list[int] | None = None) -> PreparedInstance:
    """``path``: the instance's path of indexes, given in a DAG with nested mapping."""
    if path is not None:
        return _prepare_nested(task, resolver, map_index, path)
    scope = ResolveScope(resolver, consumer=task, map_index=map_index)
    data_ids: set[int] = set()
    if isinstance(task, MappedOperator):
        kwargs, info = task.expand_input.resolve(scope, map_index)
        data_names = _data_kwarg_names(task.expand_input)
        for name, value in kwargs.items():
            if "*" in data_names or name in data_names:
                data_ids.add(id(value))
        op = task.unmap(kwargs)
        return PreparedInstance(operator=op, mapping=info, data_ids=data_ids)
    assert isinstance(task, BaseOperator)
    # A shallow copy: the worker keeps DAG objects cached, so one instance must not leak into the next.
    op = copy.copy(task)
    group = task.mapped_group
    if group is not None and map_index >= 0:
        assert group.expand_input is not None
        group_kwargs, info = group.expand_input.resolve(scope, map_index)
        data_names = _data_kwarg_names(group.expand_input)
        for name, value in group_kwargs.items():
            if "*" in data_names or name in data_names:
                data_ids.add(id(value))
        return PreparedInstance(operator=op, mapping=info, data_ids=data_ids, group_kwargs=group_kwargs)
    return PreparedInstance(operator=op, mapping=None)


def render_fields(prepared: PreparedInstance, task: Node, resolver: MappingResolver, map_index: int, context: dict[str, Any],
                  *, nested: bool = False) -> dict[str, Any]:
    """Resolve and render each template field in place; returns the rendered values by field name."""
    scope = ResolveScope(resolver, consumer=task, map_index=map_index, nested=nested)
    op = prepared.operator
    rendered: dict[str, Any] = {}
    for name in op.template_fields:
        value = _render(getattr(op, name, None), scope, prepared, context)
        setattr(op, name, value)
        rendered[name] = value
    return rendered


def _render(value: Any, scope: ResolveScope, prepared: PreparedInstance, context: dict[str, Any]) -> Any:
    if id(value) in prepared.data_ids:
        return value
    if isinstance(value, XComArg):
        return value.resolve(scope)
    if isinstance(value, ValueRef):
        return scope.resolver.ref_value(value.kind, value.key)
    if isinstance(value, MappedArgument):
        item = prepared.groups[value.group_id][value.key] if value.group_id in prepared.groups else prepared.group_kwargs[value.key]
        return item if id(item) in prepared.data_ids else _render(item, scope, prepared, context)
    if isinstance(value, str):
        return render_string(value, context) if ("{{" in value or "{%" in value) else value
    if isinstance(value, tuple):
        return tuple(_render(v, scope, prepared, context) for v in value)
    if isinstance(value, list):
        return [_render(v, scope, prepared, context) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, scope, prepared, context) for k, v in value.items()}
    return value


def render_map_index(template: str | None, context: dict[str, Any]) -> str | None:
    if not template:
        return None
    return render_string(template, context)
