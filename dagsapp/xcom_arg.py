"""References to values that exist only at run time: task results, DagRun conf, Variables.

Every reference can say how it looks serialized (what the scheduler needs to count instances) and
resolve itself against a ``MappingResolver`` that the runtime provides.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dagsapp.dependencies import DependencyMixin

if TYPE_CHECKING:
    from dagsapp.expandinput import ExpandInput
    from dagsapp.serialization import (
        ConcatSource,
        GroupArgSource,
        MapSource,
        ParamSource,
        Source,
        VariableSource,
        XComSource,
        ZipSource,
    )
    from dagsapp.taskmixin import Node

RETURN_VALUE = "return_value"
_NOTSET: Any = object()

# Item i of a mapped input: (key, value passed, value shown). For a dict, the value passed is
# the (key, value) pair and the value shown the value alone.
Item = tuple[Any, Any, Any]


class MappingResolver(Protocol):
    """What the runtime offers to resolve references for one task instance."""

    def xcom_length(self, task_id: str, *, mapped: bool) -> int | None: ...

    def xcom_value(self, task_id: str, *, mapped: bool, map_index: int | None = None) -> Any:
        """The whole result; for a mapped task a lazy sequence of all its results, or the result
        of one index when ``map_index`` is given."""

    def xcom_item(self, task_id: str, *, mapped: bool, index: int) -> Item:
        """Item ``index`` of a result mapped over: ``(key, value passed, value shown)``."""

    def ref_value(self, kind: str, key: str) -> Any: ...


class NestedResolver(Protocol):
    """What nested mapping adds: results read under the asking instance's path prefix, and the
    arguments of the mapped task groups it is in. Only the runtime's resolver has it."""

    def scoped_length(self, task_id: str, *, whole: bool, scope: int) -> int | None:
        """Length of task_id's result at the path prefix of length ``scope`` (``whole``), or the
        number of its results under that prefix; None while not known."""

    def scoped_item(self, task_id: str, *, whole: bool, scope: int, index: int) -> Item: ...

    def scoped_value(self, task_id: str, *, whole: bool, scope: int) -> Any:
        """The result at the prefix (``whole``), or all results under it, in path order."""

    def group_arg(self, group_id: str, key: str) -> Any:
        """The value of a mapped task group's argument for the asking instance's index of it."""


def nested(resolver: Any) -> NestedResolver:
    from dagsapp.exceptions import MappingError

    if not hasattr(resolver, "scoped_length"):
        raise MappingError("nested mapping needs the runtime's resolver (an instance's path of indexes)")
    return resolver  # type: ignore[no-any-return]


def shared_levels(a: Sequence[str], b: Sequence[str]) -> int:
    """How many mapping levels (outermost first) two tasks share: their common mapped groups."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class ResolveScope:
    """Where a reference is resolved: which instance of which task is asking."""

    def __init__(self, resolver: MappingResolver, *, consumer: Node | None = None, map_index: int = -1,
                 nested: bool = False) -> None:
        self.resolver = resolver
        self.consumer = consumer
        self.map_index = map_index
        # Nested mapping in this DAG: references between mapped levels resolve by path prefix.
        self.nested = nested

    def shared_scope(self, producer: Node) -> tuple[int, bool] | None:
        """With nested mapping: (levels shared with the producer, whether the producer has one
        instance at that prefix); None when the two share no mapping level."""
        if not self.nested or self.consumer is None or self.map_index < 0:
            return None
        producer_levels = producer.mapping_levels()
        c = shared_levels(self.consumer.mapping_levels(), producer_levels)
        if c == 0:
            return None
        return c, len(producer_levels) == c

    def same_group_index(self, producer: Node) -> int | None:
        """Index i of a task in the consumer's own mapped group feeds index i only (depth-first)."""
        if self.consumer is None or self.map_index < 0:
            return None
        group = self.consumer.mapped_group
        if group is not None and producer.mapped_group is group:
            return self.map_index
        return None


class XComArg(DependencyMixin):
    """A task's result, used as an argument of another task."""

    def _roots(self) -> Sequence[Node]:
        return [op for op, _ in self.iter_references()]

    _leaves = _roots

    def iter_references(self) -> Iterator[tuple[Node, str]]:
        raise NotImplementedError

    def serialize(self) -> Source:
        raise NotImplementedError

    def resolve(self, scope: ResolveScope) -> Any:
        raise NotImplementedError

    def item(self, scope: ResolveScope, index: int) -> Item:
        """Item ``index`` of this input, answered by the one function the scheduler also uses."""
        from dagsapp.expandinput import source_item

        return source_item(self.serialize(), scope.resolver, index, live=self)

    def map(self, f: Callable[[Any], Any]) -> MapXComArg:
        return MapXComArg(self, f)

    def zip(self, *others: XComArg, fillvalue: Any = _NOTSET) -> ZipXComArg:
        return ZipXComArg([self, *others], fillvalue=fillvalue)

    def concat(self, *others: XComArg) -> ConcatXComArg:
        return ConcatXComArg([self, *others])

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("An XComArg is only known at run time and cannot be iterated in a DAG file; expand() over it instead")


class PlainXComArg(XComArg):
    def __init__(self, operator: Node, key: str = RETURN_VALUE) -> None:
        self.operator = operator
        self.key = key

    def __getitem__(self, key: str) -> PlainXComArg:
        return PlainXComArg(self.operator, key)

    def iter_references(self) -> Iterator[tuple[Node, str]]:
        yield self.operator, self.key

    def serialize(self) -> XComSource:
        return {"t": "xcom", "task_id": self.operator.task_id, "key": self.key, "mapped": self.operator.produces_many}

    def resolve(self, scope: ResolveScope) -> Any:
        shared = scope.shared_scope(self.operator)
        if shared is not None:
            return nested(scope.resolver).scoped_value(self.operator.task_id, whole=shared[1], scope=shared[0])
        index = scope.same_group_index(self.operator)
        if index is not None:
            return scope.resolver.xcom_value(self.operator.task_id, mapped=True, map_index=index)
        return scope.resolver.xcom_value(self.operator.task_id, mapped=self.operator.produces_many)

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r})"


class MapXComArg(XComArg):
    def __init__(self, arg: XComArg, callable_: Callable[[Any], Any]) -> None:
        self.arg = arg
        self.callables: list[Callable[[Any], Any]] = [callable_]
        if isinstance(arg, MapXComArg):
            # Chained .map() calls collapse into one reference applying each function in turn.
            self.arg = arg.arg
            self.callables = [*arg.callables, callable_]

    def iter_references(self) -> Iterator[tuple[Node, str]]:
        yield from self.arg.iter_references()

    def serialize(self) -> MapSource:
        return {"t": "map", "arg": self.arg.serialize()}

    def apply(self, value: Any) -> Any:
        for f in self.callables:
            value = f(value)
        return value

    def resolve(self, scope: ResolveScope) -> Any:
        return _LazyMapped(self.arg.resolve(scope), self.apply)


class ZipXComArg(XComArg):
    def __init__(self, args: list[Any], *, fillvalue: Any = _NOTSET) -> None:
        if not args:
            raise TypeError("zip() needs at least one argument")
        self.args = args
        self.fillvalue = fillvalue

    def iter_references(self) -> Iterator[tuple[Node, str]]:
        for arg in self.args:
            if isinstance(arg, XComArg):
                yield from arg.iter_references()

    def serialize(self) -> ZipSource:
        spec: ZipSource = {"t": "zip", "args": [serialize_source(a) for a in self.args], "fill": self.fillvalue is not _NOTSET}
        if self.fillvalue is not _NOTSET:
            # Stored only if JSON gives it back unchanged (not a tuple, no int keys): else only the
            # worker, which has the DAG file, pads with it, and the scheduler leaves naming to it.
            try:
                same = json.loads(json.dumps(self.fillvalue)) == self.fillvalue
            except (TypeError, ValueError):
                same = False
            if same:
                spec["fillvalue"] = self.fillvalue
        return spec

    def resolve(self, scope: ResolveScope) -> Any:
        values = [a.resolve(scope) if isinstance(a, XComArg) else a for a in self.args]
        if self.fillvalue is _NOTSET:
            return list(zip(*values, strict=False))  # Python's zip: the shortest input decides
        import itertools

        return list(itertools.zip_longest(*values, fillvalue=self.fillvalue))


class ConcatXComArg(XComArg):
    def __init__(self, args: list[Any]) -> None:
        self.args = args

    def iter_references(self) -> Iterator[tuple[Node, str]]:
        for arg in self.args:
            if isinstance(arg, XComArg):
                yield from arg.iter_references()

    def serialize(self) -> ConcatSource:
        return {"t": "concat", "args": [serialize_source(a) for a in self.args]}

    def resolve(self, scope: ResolveScope) -> Any:
        out: list[Any] = []
        for arg in self.args:
            value = arg.resolve(scope) if isinstance(arg, XComArg) else arg
            out.extend(value)  # like itertools.chain, as Airflow's concat: a dict gives its keys
        return out


class ValueRef(DependencyMixin):
    """A value read when the task is expanded: a DagRun conf/param or a Variable. Not a task, so no edges."""

    kind: str

    def __init__(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"{type(self).__name__}() needs a non-empty string key, not {key!r}")
        self.key = key

    def _roots(self) -> Sequence[Node]:
        return []

    _leaves = _roots

    def serialize(self) -> ParamSource | VariableSource:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"


class ParamRef(ValueRef):
    """``expand(x=ParamRef("files"))``: the DagRun's conf value for ``files``, else the DAG param's default."""

    kind = "param"

    def serialize(self) -> ParamSource:
        return {"t": "param", "key": self.key}


class VariableRef(ValueRef):
    """``expand(x=VariableRef("regions"))``: the JSON Variable ``regions`` as stored when the task expands."""

    kind = "variable"

    def serialize(self) -> VariableSource:
        return {"t": "variable", "key": self.key}


class MappedArgument:
    """A mapped task group's parameter inside the group function: index i resolves to item i.

    Given to ``expand()`` inside the group, it is mapped over again (nested mapping): the
    group's item must then be a list or a dict."""

    def __init__(self, expand_input: ExpandInput, key: str, group_id: str = "") -> None:
        self.expand_input = expand_input
        self.key = key
        self.group_id = group_id

    def serialize(self) -> GroupArgSource:
        return {"t": "group_arg", "group_id": self.group_id, "key": self.key}

    def __repr__(self) -> str:
        return f"MappedArgument({self.key!r})"


def serialize_source(value: Any) -> Source:
    """A source as JSON; a literal as its length only (``serialize_dag`` adds its values when it can)."""
    if isinstance(value, (XComArg, ValueRef, MappedArgument)):
        return value.serialize()
    return {"t": "literal", "length": len(value)}


def literal_item(value: Any, index: int) -> Item:
    """Item ``index`` of a list (``(i, item, item)``) or a dict (``(key, (key, value), value)``)."""
    if isinstance(value, dict):
        key = list(value)[index]
        return key, (key, value[key]), value[key]
    item = value[index]
    return index, item, item


class _LazyMapped(Sequence[Any]):
    """``.map(f)`` over a whole result: f runs per item on access, so a reduce pays only for what it reads."""

    def __init__(self, inner: Any, f: Callable[[Any], Any]) -> None:
        self._inner = list(inner.items()) if isinstance(inner, dict) else inner
        self._f = f

    def __len__(self) -> int:
        return len(self._inner)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [self._f(v) for v in self._inner[index]]
        return self._f(self._inner[index])

    def __iter__(self) -> Iterator[Any]:
        for v in self._inner:
            yield self._f(v)
