"""Expand inputs: how a mapped task's arguments turn into N sets of kwargs.

Two shapes, named after Airflow's: dict-of-lists (``expand(**kw)``, the cross product of the
keyword values, last keyword varying fastest) and list-of-dicts (``expand_kwargs(...)``, one
instance per dict). Lengths and items are computed from the *serialized* form so that the
scheduler, which never imports DAG files, counts and names instances with the same code the
worker uses: one function per question (``source_length``, ``source_item``, ``resolve_spec``).
The worker passes the objects from the DAG file along (``live``) for what JSON cannot carry.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dagsapp.exceptions import MappingError
from dagsapp.xcom_arg import (
    Item,
    MappedArgument,
    MappingResolver,
    ResolveScope,
    ValueRef,
    XComArg,
    ZipXComArg,
    literal_item,
    nested,
    serialize_source,
    shared_levels,
)

if TYPE_CHECKING:
    from dagsapp.serialization import DictOfListsSpec, ExpandInputSpec, ListOfDictsSpec, Source, ZipSource


class LengthResolver(Protocol):
    def xcom_length(self, task_id: str, *, mapped: bool) -> int | None: ...

    def ref_value(self, kind: str, key: str) -> Any: ...


def source_length(src: Source, resolver: LengthResolver) -> int | None:
    """Length of one serialized source, or None while an upstream has not produced it yet."""
    if src["t"] == "literal":
        return int(src["length"])
    if src["t"] == "xcom":
        if src.get("scope"):
            return nested(resolver).scoped_length(src["task_id"], whole=not src["mapped"], scope=int(src.get("scope", 0)))
        return resolver.xcom_length(src["task_id"], mapped=bool(src["mapped"]))
    if src["t"] == "group_arg":
        value = nested(resolver).group_arg(src["group_id"], src["key"])
        if not isinstance(value, (list, tuple, dict)):
            raise MappingError(f"the mapped task group argument {src['key']!r} is {type(value).__name__!r} at this index, "
                               "which cannot be mapped over; expected a list or a dict")
        return len(value)
    if src["t"] == "param" or src["t"] == "variable":
        value = resolver.ref_value(src["t"], src["key"])
        if not isinstance(value, (list, tuple, dict)):
            name = "ParamRef" if src["t"] == "param" else "VariableRef"
            raise MappingError(f"{name}({src['key']!r}) resolved to {type(value).__name__!r}, which cannot be mapped over; expected a list or a dict")
        return len(value)
    if src["t"] == "map":
        return source_length(src["arg"], resolver)
    if src["t"] == "zip" or src["t"] == "concat":
        lengths = [source_length(a, resolver) for a in src["args"]]
        if any(n is None for n in lengths):
            return None
        known = [n for n in lengths if n is not None]
        if src["t"] == "concat":
            return sum(known)
        return max(known) if src["fill"] else min(known)
    raise MappingError(f"unknown expand source {src['t']!r}")


def expand_input_length(spec: ExpandInputSpec, resolver: LengthResolver) -> int | None:
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

    def serialize(self) -> DictOfListsSpec:
        # "order" because the database's jsonb does not keep object key order, and the keyword
        # order decides the cross product's order.
        return {"type": "dict_of_lists", "args": {k: serialize_source(v) for k, v in self.value.items()}, "order": list(self.value)}

    def resolve(self, scope: ResolveScope, map_index: int, *, outer_levels: Sequence[str] = ()) -> tuple[dict[str, Any], MappingInfo]:
        info = resolve_spec(_scoped_for(self.serialize(), scope, outer_levels), scope.resolver, map_index, live=self)
        return info.kwargs, info


class ListOfDictsExpandInput:
    def __init__(self, value: Any) -> None:
        self.value = value

    def iter_sources(self) -> list[Any]:
        if isinstance(self.value, (XComArg, ValueRef, MappedArgument)):
            return [self.value]
        return [v for item in self.value for v in item.values()]

    def serialize(self) -> ListOfDictsSpec:
        return {"type": "list_of_dicts", "source": serialize_source(self.value)}

    def resolve(self, scope: ResolveScope, map_index: int, *, outer_levels: Sequence[str] = ()) -> tuple[dict[str, Any], MappingInfo]:
        info = resolve_spec(_scoped_for(self.serialize(), scope, outer_levels), scope.resolver, map_index, live=self)
        return info.kwargs, info


ExpandInput = DictOfListsExpandInput | ListOfDictsExpandInput


def _scoped_for(spec: ExpandInputSpec, scope: ResolveScope, outer_levels: Sequence[str]) -> ExpandInputSpec:
    if not scope.nested or not outer_levels or scope.consumer is None or scope.consumer.dag is None:
        return spec
    tasks = scope.consumer.dag.task_dict
    return scope_spec(spec, outer_levels, lambda task_id: tasks[task_id].mapping_levels())


def scope_spec(spec: ExpandInputSpec, outer_levels: Sequence[str], levels_of: Callable[[str], list[str]]) -> ExpandInputSpec:
    """The expand input of one mapping level, with each upstream result it reads marked with the
    levels it shares with that level's outer levels (nested mapping): a result of a task in the
    same mapped group is read at the instance's own index there, not across all indexes."""
    def mark(src: Source) -> Source:
        if src["t"] == "xcom":
            producer = levels_of(src["task_id"])
            c = shared_levels(outer_levels, producer)
            if c == 0:
                return src
            xcom = src.copy()
            xcom["mapped"], xcom["scope"] = len(producer) > c, c
            return xcom
        if src["t"] == "map":
            mapped = src.copy()
            mapped["arg"] = mark(src["arg"])
            return mapped
        if src["t"] == "zip":
            zipped = src.copy()
            zipped["args"] = [mark(a) for a in src["args"]]
            return zipped
        if src["t"] == "concat":
            joined = src.copy()
            joined["args"] = [mark(a) for a in src["args"]]
            return joined
        return src

    if spec["type"] == "dict_of_lists":
        out = spec.copy()
        out["args"] = {k: mark(v) for k, v in spec["args"].items()}
        return out
    kw = spec.copy()
    kw["source"] = mark(spec["source"])
    return kw


class NotResolvableHere(MappingError):
    """The item needs user code (``.map(f)``) or a value that was not stored: only a worker can resolve it."""


class _NoLive:
    """``live`` when only the serialized form is at hand (the scheduler)."""

    def __repr__(self) -> str:
        return "NO_LIVE"


NO_LIVE: Any = _NoLive()


def source_item(src: Source, resolver: MappingResolver, index: int, *, live: Any = NO_LIVE) -> Item:
    """``(key, value passed, value shown)`` of item ``index`` of a source: the one answer for the
    scheduler, which has only ``src``, and the worker, which also passes ``live`` (the object in
    the DAG file: an XComArg, a ValueRef or a literal) for what JSON cannot carry: ``.map(f)``'s
    code, a literal too big to store, a ``fillvalue`` that is not JSON."""
    if src["t"] == "literal":
        if live is not NO_LIVE:
            return literal_item(live, index)
        if "items" in src:
            return literal_item(src["items"], index)
        if "pairs" in src:
            key, value = src["pairs"][index]
            return key, (key, value), value
        raise NotResolvableHere("literal values were not stored")
    if src["t"] == "xcom":
        if src.get("scope"):
            return nested(resolver).scoped_item(src["task_id"], whole=not src["mapped"], scope=int(src.get("scope", 0)), index=index)
        return resolver.xcom_item(src["task_id"], mapped=bool(src["mapped"]), index=index)
    if src["t"] == "param" or src["t"] == "variable":
        return literal_item(resolver.ref_value(src["t"], src["key"]), index)
    if src["t"] == "group_arg":
        return literal_item(nested(resolver).group_arg(src["group_id"], src["key"]), index)
    if src["t"] == "map":
        if live is NO_LIVE:
            raise NotResolvableHere("map() needs user code")
        key, value, _shown = source_item(src["arg"], resolver, index, live=live.arg)
        mapped = live.apply(value)
        return key, mapped, mapped
    if src["t"] == "zip":
        values = []
        for pos, arg in enumerate(src["args"]):
            length = source_length(arg, resolver)
            if length is not None and index >= length:
                values.append(_fillvalue(src, live))
            else:
                values.append(iterated_element(source_item(arg, resolver, index, live=_live_arg(live, pos))))
        return index, tuple(values), tuple(values)
    if src["t"] == "concat":
        offset = index
        for pos, arg in enumerate(src["args"]):
            length = source_length(arg, resolver)
            if length is None:
                raise MappingError(f"concat() item {index} resolved before the length of every input was known")
            if offset < length:
                element = iterated_element(source_item(arg, resolver, offset, live=_live_arg(live, pos)))
                return index, element, element
            offset -= length
        raise IndexError(f"concat() index {index} out of range")
    raise MappingError(f"unknown expand source {src['t']!r}")


def iterated_element(item: Item) -> Any:
    """What iterating a source gives, as zip() and concat() take it (like Python's zip and
    itertools.chain, and Airflow's concat): a list's item, or a dict's key.

    A dict source's item is ``(key, (key, value), value)`` (expand() passes the pair); a list's is
    ``(index, item, item)``, which can never have that shape, since the item would contain itself.
    """
    key, value, shown = item
    if isinstance(value, tuple) and len(value) == 2 and value[0] == key and value[1] == shown and value != shown:
        return key
    return value


def _live_arg(live: Any, pos: int) -> Any:
    return NO_LIVE if live is NO_LIVE else live.args[pos]


def _fillvalue(src: ZipSource, live: Any) -> Any:
    if isinstance(live, ZipXComArg):
        return live.fillvalue
    if "fillvalue" in src:
        return src["fillvalue"]
    # Written before the fillvalue was stored, or not JSON: the worker knows it.
    raise NotResolvableHere("zip() fillvalue was not stored")


def resolve_spec(spec: ExpandInputSpec, resolver: MappingResolver, map_index: int, *, live: ExpandInput | None = None) -> MappingInfo:
    """The ``mapping`` of one instance: its kwargs, and the key and value its name and templates
    show. The scheduler passes the serialized expand input alone; the worker its ``live`` one too."""
    if spec["type"] == "list_of_dicts":
        _key, item, _shown = source_item(spec["source"], resolver, map_index, live=NO_LIVE if live is None else live.value)
        if not isinstance(item, dict):
            raise MappingError(f"expand_kwargs() expects each item to be a dict, but item {map_index} is {type(item).__name__!r}")
        bad = [k for k in item if not isinstance(k, str)]
        if bad:
            raise MappingError(f"expand_kwargs() item {map_index} has a non-string key {bad[0]!r}")
        return MappingInfo(key=map_index, value=dict(item), kwargs=dict(item))
    names = list(spec.get("order") or spec["args"])
    lengths = []
    for name in names:
        length = source_length(spec["args"][name], resolver)
        if length is None:
            raise MappingError(f"cannot resolve map_index {map_index}: the length of {name!r} is not known yet")
        lengths.append(length)
    kwargs: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    for name, pos in zip(names, unravel_index(map_index, lengths), strict=True):
        live_src = NO_LIVE if live is None else live.value[name]
        keys[name], kwargs[name], shown[name] = source_item(spec["args"][name], resolver, pos, live=live_src)
    if len(names) == 1:
        return MappingInfo(key=keys[names[0]], value=shown[names[0]], kwargs=kwargs)
    return MappingInfo(key=keys, value=shown, kwargs=kwargs)
