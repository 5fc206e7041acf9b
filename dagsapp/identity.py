"""Item identity: which item each index of a mapped task stands for, stable across re-expansions.

An index keeps its number when a mapped task expands again over a changed upstream list, so the
number alone cannot tell whether index 3 is still the same item. Each instance therefore records
its item's identity, a short string:

- an item of a dict: its key;
- an item of a list: ``value_identity(item)``, a sha256 of its canonical JSON, truncated;
- with ``partial(map_key=f)``: ``str(f(item))``, where ``item`` is what the task receives.

The scheduler never runs user code, so identities come from where the items are known: the
upstream's worker computes them when it records the TaskMap (its ``map_key`` consumers' too),
literals get theirs at parse time, and ``expansion_identities`` combines them per ``map_index``
for the expand input, in the same order as ``resolve_spec`` (``itertools.product``, last keyword
varying fastest). An identity that cannot be known (a literal too big or not JSON to store, a
TaskMap recorded before identities existed) is ``None``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dagsapp.exceptions import UnmappableArgument
from dagsapp.expandinput import DictOfListsExpandInput, ExpandInput, source_length
from dagsapp.xcom_arg import PlainXComArg, ValueRef, XComArg

if TYPE_CHECKING:
    from dagsapp.serialization import ExpandInputSpec, Source

IDENTITY_LENGTH = 16
MAX_KEY_LENGTH = 200
# TaskMap.identities: the key of the default identities (a list's item hashes); a consumer with a
# map_key has its own list under its task_id.
DEFAULT_IDENTITIES = ""

Identities = list[str | None]


class IdentityResolver(Protocol):
    """What the runtime offers to read the identities a result was recorded with."""

    def xcom_length(self, task_id: str, *, mapped: bool) -> int | None: ...

    def xcom_identities(self, task_id: str, *, mapped: bool, consumer: str) -> Identities | None:
        """The identities of a result's items as ``consumer`` sees them (None if not recorded)."""

    def ref_value(self, kind: str, key: str) -> Any: ...


def value_identity(value: Any) -> str:
    """A stable hash of a JSON value: sorted keys, no spaces; what JSON cannot carry by its repr."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:IDENTITY_LENGTH]


def item_identities(value: Any, *, map_key: Callable[[Any], Any] | None = None, call: str = "map_key") -> list[str]:
    """Identities of a list's or dict's items; ``map_key`` receives each item as the task does
    (a dict's item as its ``(key, value)`` pair)."""
    items: Sequence[Any] = list(value.items()) if isinstance(value, dict) else value
    if map_key is None:
        return list(value) if isinstance(value, dict) else [value_identity(v) for v in items]
    out: list[str] = []
    for i, item in enumerate(items):
        key = map_key(item)
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise TypeError(f"{call} returned {type(key).__name__!r} for item {i}; it must return a str or an int")
        text = str(key)
        if len(text) > MAX_KEY_LENGTH:
            raise ValueError(f"{call} returned a key of {len(text)} characters for item {i}; at most {MAX_KEY_LENGTH}")
        out.append(text)
    return out


def combine(parts: Sequence[str | None]) -> str | None:
    """One identity for several components (keywords of a cross product, inputs of a zip)."""
    if any(p is None for p in parts):
        return None
    return value_identity(list(parts))


def unknown(length: int) -> Identities:
    return [None for _ in range(length)]


def source_identities(src: Source, resolver: IdentityResolver, *, consumer: str) -> Identities:
    """The identity of each item of a serialized source, in index order."""
    length = source_length(src, resolver) or 0
    if src["t"] == "literal":
        stored = src.get("identities")
        if stored is not None:
            return list(stored)
        if "items" in src:
            return list(item_identities(src["items"]))
        if "pairs" in src:
            return [str(k) for k, _v in src["pairs"]]
        return unknown(length)
    if src["t"] == "xcom":
        ids = resolver.xcom_identities(src["task_id"], mapped=bool(src["mapped"]), consumer=consumer)
        return list(ids) if ids is not None and len(ids) == length else unknown(length)
    if src["t"] == "param" or src["t"] == "variable":
        return list(item_identities(resolver.ref_value(src["t"], src["key"])))
    if src["t"] == "map":
        # .map(f) changes the value, not which item it is: the source item's identity.
        return source_identities(src["arg"], resolver, consumer=consumer)
    if src["t"] == "zip":
        parts = [source_identities(a, resolver, consumer=consumer) for a in src["args"]]
        return [combine([p[i] if i < len(p) else "" for p in parts]) for i in range(length)]
    if src["t"] == "concat":
        return [i for a in src["args"] for i in source_identities(a, resolver, consumer=consumer)]
    return unknown(length)


def expansion_identities(spec: ExpandInputSpec, resolver: IdentityResolver, *, consumer: str) -> Identities:
    """The identity of each ``map_index`` of an expand input (``consumer`` is the mapped task)."""
    if spec["type"] == "list_of_dicts":
        return source_identities(spec["source"], resolver, consumer=consumer)
    names = list(spec.get("order") or spec["args"])
    per_name = [source_identities(spec["args"][n], resolver, consumer=consumer) for n in names]
    if len(per_name) == 1:
        return per_name[0]
    return [combine(parts) for parts in itertools.product(*per_name)]


def validate_map_key(call: str, map_key: Any, expand_input: ExpandInput) -> None:
    """``partial(map_key=...)`` needs a callable and one input it can be applied to when the items
    are known: an upstream task's whole result (its worker applies it) or a literal (applied when
    the DAG file is parsed). Everything else is refused here, naming the call."""
    if not callable(map_key):
        raise TypeError(f"{call}: map_key must be a callable taking an item, not {type(map_key).__name__!r}")
    sources = expand_input.iter_sources() if isinstance(expand_input, DictOfListsExpandInput) else [expand_input.value]
    if len(sources) != 1:
        raise UnmappableArgument(f"{call}: map_key needs exactly one mapped input, got {len(sources)}; "
                                 "a cross product's identity combines its inputs' own identities")
    src = sources[0]
    if isinstance(src, PlainXComArg):
        if src.operator.produces_many:
            raise UnmappableArgument(f"{call}: map_key cannot apply to the results of the mapped task {src.operator.task_id!r}")
        return
    if isinstance(src, (XComArg, ValueRef)):
        raise UnmappableArgument(f"{call}: map_key applies to an upstream task's result or a literal list, "
                                 f"not {type(src).__name__}")
