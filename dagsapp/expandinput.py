"""Expand inputs: how a mapped task's arguments turn into N sets of kwargs.

Two shapes, named after Airflow's: dict-of-lists (``expand(**kw)``, the cross product of the
keyword values, last keyword varying fastest) and list-of-dicts (``expand_kwargs(...)``, one
instance per dict). Lengths are computed from the *serialized* form so that the scheduler, which
never imports DAG files, counts instances with the same code the worker uses.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dagsapp.exceptions import MappingError
from dagsapp.xcom_arg import MappingResolver, ResolveScope, ValueRef, XComArg, serialize_source, source_item


class LengthResolver(Protocol):
    def xcom_length(self, task_id: str, *, mapped: bool) -> int | None: ...

    def ref_value(self, kind: str, key: str) -> Any: ...


def source_length(src: Mapping[str, Any], resolver: LengthResolver) -> int | None:
    """Length of one serialized source, or None while an upstream has not produced it yet."""
    kind = src["t"]
    if kind == "literal":
        return int(src["length"])
    if kind == "xcom":
        return resolver.xcom_length(src["task_id"], mapped=bool(src["mapped"]))
    if kind in ("param", "variable"):
        value = resolver.ref_value(kind, src["key"])
        if not isinstance(value, (list, tuple, dict)):
            name = "ParamRef" if kind == "param" else "VariableRef"
            raise MappingError(f"{name}({src['key']!r}) resolved to {type(value).__name__!r}, which cannot be mapped over; expected a list or a dict")
        return len(value)
    if kind == "map":
        return source_length(src["arg"], resolver)
    if kind in ("zip", "concat"):
        lengths = [source_length(a, resolver) for a in src["args"]]
        if any(n is None for n in lengths):
            return None
        known = [n for n in lengths if n is not None]
        if kind == "concat":
            return sum(known)
        return max(known) if src["fill"] else min(known)
    raise MappingError(f"unknown expand source {kind!r}")


def expand_input_length(spec: Mapping[str, Any], resolver: LengthResolver) -> int | None:
    """Total number of instances for a serialized expand input (None while not ready)."""
    if spec["type"] == "dict_of_lists":
        lengths = [source_length(s, resolver) for s in spec["args"].values()]
        if any(n is None for n in lengths):
            return None
        return math.prod(n for n in lengths if n is not None)
    if spec["type"] == "list_of_dicts":
        return source_length(spec["source"], resolver)
    raise MappingError(f"unknown expand input {spec['type']!r}")


def unravel_index(map_index: int, lengths: Sequence[int]) -> list[int]:
    """Position in each keyword's values for ``map_index``, in ``itertools.product`` order."""
    total = math.prod(lengths)
    if not 0 <= map_index < total:
        raise IndexError(f"map_index {map_index} out of range for lengths {list(lengths)}")
    positions: list[int] = []
    for length in reversed(lengths):
        map_index, pos = divmod(map_index, length)
        positions.append(pos)
    positions.reverse()
    return positions


@dataclass(frozen=True)
class MappingInfo:
    """What the template context exposes as ``mapping`` for one instance."""

    key: Any
    value: Any
    kwargs: dict[str, Any]


class DictOfListsExpandInput:
    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value

    def iter_sources(self) -> list[Any]:
        return list(self.value.values())

    def serialize(self) -> dict[str, Any]:
        # "order" because the database's jsonb does not keep object key order, and the keyword
        # order decides the cross product's order.
        return {"type": "dict_of_lists", "args": {k: serialize_source(v) for k, v in self.value.items()}, "order": list(self.value)}

    def resolve(self, scope: ResolveScope, map_index: int) -> tuple[dict[str, Any], MappingInfo]:
        lengths = []
        for name, src in self.value.items():
            length = source_length(serialize_source(src), scope.resolver)
            if length is None:
                raise MappingError(f"cannot resolve map_index {map_index}: the length of {name!r} is not known yet")
            lengths.append(length)
        positions = unravel_index(map_index, lengths)
        kwargs: dict[str, Any] = {}
        keys: dict[str, Any] = {}
        shown: dict[str, Any] = {}
        for (name, src), pos in zip(self.value.items(), positions, strict=True):
            key, value, display = source_item(src, scope, pos)
            kwargs[name], keys[name], shown[name] = value, key, display
        if len(kwargs) == 1:
            (name,) = kwargs
            return kwargs, MappingInfo(key=keys[name], value=shown[name], kwargs=kwargs)
        return kwargs, MappingInfo(key=keys, value=shown, kwargs=kwargs)


class ListOfDictsExpandInput:
    def __init__(self, value: Any) -> None:
        self.value = value

    def iter_sources(self) -> list[Any]:
        if isinstance(self.value, (XComArg, ValueRef)):
            return [self.value]
        return [v for item in self.value for v in item.values()]

    def serialize(self) -> dict[str, Any]:
        return {"type": "list_of_dicts", "source": serialize_source(self.value)}

    def resolve(self, scope: ResolveScope, map_index: int) -> tuple[dict[str, Any], MappingInfo]:
        _key, item, _shown = source_item(self.value, scope, map_index)
        if not isinstance(item, dict):
            raise MappingError(f"expand_kwargs() expects each item to be a dict, but item {map_index} is {type(item).__name__!r}")
        bad = [k for k in item if not isinstance(k, str)]
        if bad:
            raise MappingError(f"expand_kwargs() item {map_index} has a non-string key {bad[0]!r}")
        return dict(item), MappingInfo(key=map_index, value=dict(item), kwargs=dict(item))


ExpandInput = DictOfListsExpandInput | ListOfDictsExpandInput


class NotResolvableHere(MappingError):
    """The item needs user code (``.map(f)``) or a literal too big to store: only a worker can resolve it."""


def serialized_item(src: Mapping[str, Any], resolver: MappingResolver, index: int) -> tuple[Any, Any, Any]:
    """``(key, value passed, value shown)`` of item ``index`` of a serialized source, without user code."""
    kind = src["t"]
    if kind == "literal":
        if "items" in src:
            item = src["items"][index]
            return index, item, item
        if "pairs" in src:
            key, value = src["pairs"][index]
            return key, (key, value), value
        raise NotResolvableHere("literal values were not stored")
    if kind == "xcom":
        return resolver.xcom_item(src["task_id"], mapped=bool(src["mapped"]), index=index)
    if kind in ("param", "variable"):
        value = resolver.ref_value(kind, src["key"])
        if isinstance(value, dict):
            key = list(value)[index]
            return key, (key, value[key]), value[key]
        return index, value[index], value[index]
    if kind == "zip":
        values = []
        for arg in src["args"]:
            length = source_length(arg, resolver)
            values.append(None if length is not None and index >= length else serialized_item(arg, resolver, index)[1])
        return index, tuple(values), tuple(values)
    if kind == "concat":
        offset = index
        for arg in src["args"]:
            length = source_length(arg, resolver) or 0
            if offset < length:
                _k, value, shown = serialized_item(arg, resolver, offset)
                return index, value, shown
            offset -= length
        raise IndexError(f"concat() index {index} out of range")
    raise NotResolvableHere(f"{kind}() needs user code")


def resolve_serialized(spec: Mapping[str, Any], resolver: Any, map_index: int) -> MappingInfo:
    """The ``mapping`` of one instance from the serialized expand input (as the scheduler sees it)."""
    if spec["type"] == "list_of_dicts":
        _k, item, _s = serialized_item(spec["source"], resolver, map_index)
        if not isinstance(item, dict):
            raise MappingError(f"expand_kwargs() expects each item to be a dict, but item {map_index} is {type(item).__name__!r}")
        return MappingInfo(key=map_index, value=dict(item), kwargs=dict(item))
    names = list(spec.get("order") or spec["args"])
    lengths = []
    for name in names:
        length = source_length(spec["args"][name], resolver)
        if length is None:
            raise MappingError(f"the length of {name!r} is not known yet")
        lengths.append(length)
    kwargs, keys, shown = {}, {}, {}
    for name, pos in zip(names, unravel_index(map_index, lengths), strict=True):
        keys[name], kwargs[name], shown[name] = serialized_item(spec["args"][name], resolver, pos)
    if len(names) == 1:
        return MappingInfo(key=keys[names[0]], value=shown[names[0]], kwargs=kwargs)
    return MappingInfo(key=keys, value=shown, kwargs=kwargs)
