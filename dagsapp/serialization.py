"""A DAG as JSON: everything the scheduler and the web pages need, without importing the DAG file.

The TypedDicts below are the written contract between authoring (``dagsapp/``) and the engine
(``runs/``): ``serialize_dag`` produces a ``DagData``, and every reader in ``runs/`` reads it
through these types. The JSON is stored with each run, so keys are only ever added: a key that
older stored versions may lack is ``NotRequired`` and read with a default.
"""
from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

from dagsapp.baseoperator import MappedOperator
from dagsapp.dag import DAG
from dagsapp.exceptions import DagDefinitionError
from dagsapp.expandinput import DictOfListsExpandInput, ExpandInput, scope_spec
from dagsapp.identity import item_identities
from dagsapp.params import ParamSpec
from dagsapp.taskgroup import TaskGroup
from dagsapp.taskmixin import Node
from dagsapp.tolerance import Tolerance
from dagsapp.xcom_arg import shared_levels

if TYPE_CHECKING:
    from dagsapp.start_trigger import StartTriggerData


# Sources: what one mapped keyword (or expand_kwargs) maps over, tagged by "t".
class LiteralSource(TypedDict):
    """A list or dict written in the DAG file. Its values are stored when JSON-able and not huge
    (``items`` for a list, ``pairs`` for a dict: jsonb does not keep key order), else only its length."""

    t: Literal["literal"]
    length: int
    items: NotRequired[list[Any]]
    pairs: NotRequired[list[list[Any]]]
    # The items' identities from the consumer's partial(map_key=...), computed at parse time.
    identities: NotRequired[list[str]]


class XComSource(TypedDict):
    """A task's result: of an unmapped task (one list or dict), or of a mapped one (one item per instance)."""

    t: Literal["xcom"]
    task_id: str
    key: str
    mapped: bool
    # Nested mapping only: the consumer and the producer share this many mapping levels (mapped
    # task groups), so only the producer's instances under the consumer's path prefix of that
    # length count: its one result there (``mapped`` false), or one item per instance under it.
    scope: NotRequired[int]


class MapSource(TypedDict):
    """``XComArg.map(f)``: ``f`` is user code, so only a worker (which imports the DAG file) applies it."""

    t: Literal["map"]
    arg: Source


class ZipSource(TypedDict):
    """``XComArg.zip(*others, fillvalue=...)``; ``fillvalue`` is stored when one was given and is
    JSON-able (versions written before it was stored have only ``fill``)."""

    t: Literal["zip"]
    args: list[Source]
    fill: bool
    fillvalue: NotRequired[Any]


class ConcatSource(TypedDict):
    t: Literal["concat"]
    args: list[Source]


class ParamSource(TypedDict):
    """``ParamRef(key)``: the run's conf value, else the DAG param's default."""

    t: Literal["param"]
    key: str


class VariableSource(TypedDict):
    """``VariableRef(key)``: a JSON Variable, frozen for the run at its first use."""

    t: Literal["variable"]
    key: str


class GroupArgSource(TypedDict):
    """A mapped task group's argument, expanded over again inside the group (nested mapping): the
    value the group's instance got for ``key``, which must be a list or a dict."""

    t: Literal["group_arg"]
    group_id: str
    key: str


Source = LiteralSource | XComSource | MapSource | ZipSource | ConcatSource | ParamSource | VariableSource | GroupArgSource


# Expand inputs: the two shapes, tagged by "type".
class DictOfListsSpec(TypedDict):
    """``expand(**kw)``: the cross product of the keywords' sources. ``order`` keeps the keyword
    order (jsonb does not), which decides the product's order."""

    type: Literal["dict_of_lists"]
    args: dict[str, Source]
    order: NotRequired[list[str]]


class ListOfDictsSpec(TypedDict):
    """``expand_kwargs(...)``: one instance per dict of the source."""

    type: Literal["list_of_dicts"]
    source: Source


ExpandInputSpec = DictOfListsSpec | ListOfDictsSpec


class MappingSpec(TypedDict):
    """How a task is mapped: by its own expand/expand_kwargs, or as a member of a mapped task group."""

    kind: Literal["expand", "expand_kwargs", "group"]
    input: ExpandInputSpec
    group_id: NotRequired[str]  # kind "group" only


class LevelData(TypedDict):
    """One dimension of a nested-mapped task: a mapped task group it is in, or its own expand."""

    id: str  # the group's id, or the task's own id for its own expand
    kind: Literal["expand", "expand_kwargs", "group"]
    # Upstream results it reads are marked with the levels they share ("scope").
    input: ExpandInputSpec


class ToleranceData(TypedDict):
    """``partial(max_failed_ratio=..., max_failed_count=...)``; a bound not given is None."""

    max_failed_ratio: float | None
    max_failed_count: int | None


class TaskData(TypedDict):
    task_id: str
    label: str
    group_id: str | None
    operator: str
    ui_color: str
    upstream: list[str]
    downstream: list[str]
    trigger_rule: str
    retries: int
    retry_delay: float  # seconds
    max_active_tis_per_dagrun: int | None
    max_map_length: int | None
    map_index_template: str | None
    template_fields: list[str]
    do_xcom_push: NotRequired[bool]
    is_mapped: bool
    produces_many: bool
    mapping: MappingSpec | None
    # Upstreams in the same mapped task group: index i waits only for their index i.
    same_index_upstream: NotRequired[list[str]]
    # The whole result is mapped over: record its length (TaskMap), within the most permissive limit.
    feeds_mapping: bool
    feeds_mapping_limits: list[int | None]
    doc_md: str | None
    # partial(map_key=...) was given (dagsapp.identity); on a producer, the tasks mapping over
    # its result with a map_key, which its worker applies when it records the TaskMap.
    map_key: NotRequired[bool]
    map_key_consumers: NotRequired[list[str]]
    # A mapped task's tolerated failures; written only when given, so a DAG without any keeps its hash.
    tolerance: NotRequired[ToleranceData]
    # Nested mapping (DAGs with a level inside a mapped group only, so others keep their hash):
    # the task's mapping levels, outermost first; an instance's path has one index per level.
    levels: NotRequired[list[LevelData]]
    # The task may start in the triggerer (start_from_trigger): what the scheduler needs to decide
    # that per index (dagsapp/start_trigger.py); written only for such tasks.
    start_trigger: NotRequired[StartTriggerData]


class ChildRef(TypedDict):
    type: Literal["group", "task"]
    id: str


class TaskGroupData(TypedDict):
    group_id: str
    label: str
    parent: str | None
    tooltip: str
    is_mapped: bool
    children: list[ChildRef]
    # A mapped group's tolerated failures, counted over its indexes; written only when given.
    tolerance: NotRequired[ToleranceData]


class DagData(TypedDict):
    format: int
    dag_id: str
    fileloc: str | None
    description: str | None
    doc_md: str | None
    schedule: str | None  # normalized: None, "@once", "@daily", a cron, or "timedelta:<seconds>"
    start_date: str | None  # ISO 8601
    end_date: str | None
    catchup: bool
    params: dict[str, Any]
    max_active_runs: int
    tags: list[str]
    task_order: list[str]  # topological
    tasks: dict[str, TaskData]
    task_groups: dict[str, TaskGroupData]
    root_children: list[ChildRef]
    # Only when the DAG uses Param (dagsapp/params.py): so the hash of every other DAG is unchanged.
    params_schema: NotRequired[list[ParamSpec]]
    # Some task is mapped more than one level deep (an expand or a mapped group inside a mapped group).
    nested: NotRequired[bool]


class FolderData(TypedDict):
    """What ``python -m dagsapp.loader <folder>`` prints: the DAGs, import errors, DAG ids by file."""

    dags: dict[str, DagData]
    import_errors: dict[str, str]
    files: dict[str, list[str]]
    # Each parsed file's source text, as it was imported (the code page of a DAG version shows it).
    sources: NotRequired[dict[str, str]]


FORMAT_VERSION = 1


MAX_STORED_LITERAL_ITEMS = 10_000


def _literal_values(spec: Source, live: Any) -> None:
    """Store literal lists/dicts (JSON-able, not huge) in the spec, so the scheduler can name
    instances without importing the DAG file. Dicts become pairs: jsonb does not keep key order."""
    if spec["t"] == "literal" and isinstance(live, (list, tuple, dict)) and len(live) <= MAX_STORED_LITERAL_ITEMS:
        try:
            if isinstance(live, dict):
                pairs = [[k, v] for k, v in live.items()]
                json.dumps(pairs)
                spec["pairs"] = pairs
            else:
                items = list(live)
                json.dumps(items)
                spec["items"] = items
        except (TypeError, ValueError):
            return
    elif spec["t"] == "zip" or spec["t"] == "concat":
        for sub_spec, sub_live in zip(spec["args"], live.args, strict=True):
            _literal_values(sub_spec, sub_live)


def _input_spec(expand_input: ExpandInput) -> ExpandInputSpec:
    if isinstance(expand_input, DictOfListsExpandInput):
        spec = expand_input.serialize()
        for name, live in expand_input.value.items():
            _literal_values(spec["args"][name], live)
        return spec
    kwargs_spec = expand_input.serialize()
    if isinstance(expand_input.value, (list, tuple)) and all(isinstance(i, dict) for i in expand_input.value):
        _literal_values(kwargs_spec["source"], expand_input.value)
    return kwargs_spec


def _map_key_identities(task: MappedOperator, spec: ExpandInputSpec) -> None:
    """A literal's identities under the task's map_key, computed now: the DAG file is at hand."""
    if task.map_key is None:
        return
    if isinstance(task.expand_input, DictOfListsExpandInput):
        ((name, live),) = task.expand_input.value.items()
        assert spec["type"] == "dict_of_lists"
        src = spec["args"][name]
    else:
        live = task.expand_input.value
        assert spec["type"] == "list_of_dicts"
        src = spec["source"]
    if src["t"] != "literal":
        return
    call = f"{task.task_id}.partial(map_key=...)"
    try:
        src["identities"] = item_identities(live, map_key=task.map_key, call=call)
    except Exception as exc:
        raise DagDefinitionError(f"{call} failed on the literal input: {exc}") from exc


def _mapping(task: Node) -> MappingSpec | None:
    if isinstance(task, MappedOperator):
        spec = _input_spec(task.expand_input)
        _map_key_identities(task, spec)
        if isinstance(task.expand_input, DictOfListsExpandInput):
            return {"kind": "expand", "input": spec}
        return {"kind": "expand_kwargs", "input": spec}
    group = task.mapped_group
    if group is not None:
        assert group.expand_input is not None and group.group_id is not None
        return {"kind": "group", "group_id": group.group_id, "input": _input_spec(group.expand_input)}
    return None


def _start_trigger(task: Node, mapping: MappingSpec | None) -> StartTriggerData | None:
    from dagsapp.start_trigger import start_trigger_data

    own = mapping["input"] if mapping is not None and mapping["kind"] != "group" else None
    return start_trigger_data(task, own)


def _iter_xcom_sources(src: Source) -> list[XComSource]:
    if src["t"] == "xcom":
        return [src]
    if src["t"] == "map":
        return _iter_xcom_sources(src["arg"])
    if src["t"] == "zip" or src["t"] == "concat":
        return [s for a in src["args"] for s in _iter_xcom_sources(a)]
    return []


def input_sources(spec: ExpandInputSpec) -> list[XComSource]:
    """The upstream results an expand input reads, through map, zip and concat."""
    if spec["type"] == "dict_of_lists":
        return [s for v in spec["args"].values() for s in _iter_xcom_sources(v)]
    return _iter_xcom_sources(spec["source"])


def _tolerance(tolerance: Tolerance | None) -> ToleranceData | None:
    if tolerance is None:
        return None
    return {"max_failed_ratio": tolerance.max_failed_ratio, "max_failed_count": tolerance.max_failed_count}


class ToleranceUnit(TypedDict):
    """What one tolerance is counted over: a mapped task (``unit`` is its id), or a mapped task
    group (``unit`` is the group id, ``task_ids`` all its tasks)."""

    unit: str
    task_ids: list[str]
    tolerance: ToleranceData


def tolerance_units(data: DagData) -> dict[str, ToleranceUnit]:
    """Task id -> the tolerance that covers it: its own, or its mapped group's (stored versions
    without the key have none)."""
    groups: dict[str, ToleranceUnit] = {}
    out: dict[str, ToleranceUnit] = {}
    for task_id, task in data["tasks"].items():
        mapping = task["mapping"]
        if "tolerance" in task and mapping is not None and mapping["kind"] != "group":
            out[task_id] = {"unit": task_id, "task_ids": [task_id], "tolerance": task["tolerance"]}
        elif mapping is not None and mapping["kind"] == "group":
            gid = mapping.get("group_id", "")
            group = data["task_groups"].get(gid)
            if group is not None and "tolerance" in group:
                unit = groups.setdefault(gid, {"unit": gid, "task_ids": [], "tolerance": group["tolerance"]})
                unit["task_ids"].append(task_id)
                out[task_id] = unit
    return out


def tolerance_rule(spec: ToleranceData) -> Tolerance:
    return Tolerance(max_failed_ratio=spec["max_failed_ratio"], max_failed_count=spec["max_failed_count"])


def serialize_dag(dag: DAG) -> DagData:
    order = dag.topological_task_ids()
    tasks: dict[str, TaskData] = {}
    for task_id in order:
        t = dag.task_dict[task_id]
        group = t.task_group
        op_class = t.operator_class if isinstance(t, MappedOperator) else type(t)
        tasks[task_id] = {
            "task_id": task_id,
            "label": task_id.rsplit(".", 1)[-1] if group is not None and group.group_id else task_id,
            "group_id": group.group_id if group is not None else None,
            "operator": op_class.__name__,
            "ui_color": getattr(op_class, "ui_color", "#fff"),
            "upstream": sorted(t.upstream_task_ids),
            "downstream": sorted(t.downstream_task_ids),
            "trigger_rule": str(t.trigger_rule),  # type: ignore[attr-defined]
            "retries": int(t.retries),  # type: ignore[attr-defined]
            "retry_delay": t.retry_delay.total_seconds(),  # type: ignore[attr-defined]
            "max_active_tis_per_dagrun": t.max_active_tis_per_dagrun,  # type: ignore[attr-defined]
            "max_map_length": t.max_map_length,  # type: ignore[attr-defined]
            "map_index_template": t.map_index_template,  # type: ignore[attr-defined]
            "template_fields": list(t.template_fields),  # type: ignore[attr-defined]
            "do_xcom_push": bool(t.do_xcom_push),  # type: ignore[attr-defined]
            "is_mapped": t.is_mapped,
            "produces_many": t.produces_many,
            "mapping": _mapping(t),
            # Upstreams in the same mapped task group: index i waits only for their index i.
            "same_index_upstream": sorted(
                u for u in t.upstream_task_ids
                if t.mapped_group is not None and dag.task_dict[u].mapped_group is t.mapped_group
            ),
            "feeds_mapping": False,
            "feeds_mapping_limits": [],
            "doc_md": t.doc_md,  # type: ignore[attr-defined]
        }
        if isinstance(t, MappedOperator) and t.map_key is not None:
            tasks[task_id]["map_key"] = True
        tolerance = _tolerance(t.tolerance if isinstance(t, MappedOperator) else None)
        if tolerance is not None:
            tasks[task_id]["tolerance"] = tolerance
        start = _start_trigger(t, tasks[task_id]["mapping"])
        if start is not None:
            tasks[task_id]["start_trigger"] = start
    nested = any(len(dag.task_dict[t].mapping_levels()) > 1 for t in order)
    if nested:
        for task_id in order:
            _nested_levels(dag, dag.task_dict[task_id], tasks[task_id])
    # A task whose whole result is mapped over records its length (TaskMap); the limits of the
    # tasks mapping over it are kept so the runtime can apply the most permissive one.
    for consumer in tasks.values():
        if consumer["mapping"] is None:
            continue
        level_inputs = [lv["input"] for lv in consumer.get("levels", [])] or [consumer["mapping"]["input"]]
        for src in (s for spec in level_inputs for s in input_sources(spec)):
            producer = tasks.get(src["task_id"])
            if producer is not None and not src["mapped"]:
                producer["feeds_mapping"] = True
                producer["feeds_mapping_limits"].append(consumer["max_map_length"])
                if consumer.get("map_key"):
                    producer.setdefault("map_key_consumers", []).append(consumer["task_id"])
    groups: dict[str, TaskGroupData] = {}
    for gid, g in dag.task_groups.items():
        groups[gid] = _group(g)
    data: DagData = {
        "format": FORMAT_VERSION,
        "dag_id": dag.dag_id,
        "fileloc": dag.fileloc,
        "description": dag.description,
        "doc_md": dag.doc_md,
        "schedule": dag.schedule,
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "end_date": dag.end_date.isoformat() if dag.end_date else None,
        "catchup": dag.catchup,
        "params": dag.params,
        "max_active_runs": dag.max_active_runs,
        "tags": dag.tags,
        "task_order": order,
        "tasks": tasks,
        "task_groups": groups,
        "root_children": _children(dag.task_group),
    }
    if dag.param_specs:
        data["params_schema"] = dag.param_specs
    if nested:
        data["nested"] = True
    try:
        json.dumps(data)
    except TypeError as exc:
        raise DagDefinitionError(f"DAG {dag.dag_id!r} cannot be serialized (params must be JSON values): {exc}") from None
    return data


def _nested_levels(dag: DAG, t: Node, out: TaskData) -> None:
    """Levels, scoped inputs and prefix upstreams of one task of a DAG with nested mapping."""
    ids = t.mapping_levels()
    if not ids:
        return

    def levels_of(task_id: str) -> list[str]:
        return dag.task_dict[task_id].mapping_levels()

    chain = t.task_group.mapped_chain() if t.task_group is not None else []
    levels: list[LevelData] = []
    for i, group in enumerate(chain):
        assert group.expand_input is not None
        levels.append({"id": ids[i], "kind": "group", "input": scope_spec(_input_spec(group.expand_input), ids[:i], levels_of)})
    if isinstance(t, MappedOperator):
        kind: Literal["expand", "expand_kwargs"] = "expand" if isinstance(t.expand_input, DictOfListsExpandInput) else "expand_kwargs"
        assert out["mapping"] is not None
        levels.append({"id": t.task_id, "kind": kind, "input": scope_spec(out["mapping"]["input"], ids[:-1], levels_of)})
    out["levels"] = levels
    assert out["mapping"] is not None
    out["mapping"]["input"] = levels[-1]["input"]
    # Upstreams that share a mapping level: an instance waits only for those under its own path prefix.
    out["same_index_upstream"] = sorted(u for u in t.upstream_task_ids if shared_levels(ids, levels_of(u)) > 0)


def _children(group: TaskGroup) -> list[ChildRef]:
    out: list[ChildRef] = []
    for key, child in group.children.items():
        out.append({"type": "group", "id": key} if isinstance(child, TaskGroup) else {"type": "task", "id": key})
    return out


def _group(g: TaskGroup) -> TaskGroupData:
    gid = g.group_id
    assert gid is not None
    data: TaskGroupData = {
        "group_id": gid,
        "label": gid.rsplit(".", 1)[-1],
        "parent": g.parent.group_id if g.parent is not None else None,
        "tooltip": g.tooltip,
        "is_mapped": g.is_mapped,
        "children": _children(g),
    }
    tolerance = _tolerance(g.tolerance)
    if tolerance is not None:
        data["tolerance"] = tolerance
    return data


def dag_hash(data: DagData, source: str = "") -> str:
    """A DAG version's identity: its structure and, when given, its file's source, so an edit of the
    code alone (a task's body, a comment) is a new version too and old runs keep showing old code."""
    structure = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    if not source:
        return structure
    return hashlib.sha256(f"{structure}\0{source}".encode("utf-8", "backslashreplace")).hexdigest()

