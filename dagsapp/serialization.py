"""A DAG as JSON: everything the scheduler and the web pages need, without importing the DAG file."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from dagsapp.baseoperator import MappedOperator
from dagsapp.dag import DAG
from dagsapp.exceptions import DagDefinitionError
from dagsapp.expandinput import DictOfListsExpandInput
from dagsapp.taskgroup import TaskGroup
from dagsapp.taskmixin import Node

FORMAT_VERSION = 1


MAX_STORED_LITERAL_ITEMS = 10_000


def _literal_values(spec: dict[str, Any], live: Any) -> None:
    """Store literal lists/dicts (JSON-able, not huge) in the spec, so the scheduler can name
    instances without importing the DAG file. Dicts become pairs: jsonb does not keep key order."""
    if spec.get("t") == "literal" and isinstance(live, (list, tuple, dict)) and len(live) <= MAX_STORED_LITERAL_ITEMS:
        try:
            if isinstance(live, dict):
                candidate: dict[str, Any] = {"pairs": [[k, v] for k, v in live.items()]}
            else:
                candidate = {"items": list(live)}
            json.dumps(candidate)
        except (TypeError, ValueError):
            return
        spec.update(candidate)
    elif spec.get("t") in ("zip", "concat"):
        for sub_spec, sub_live in zip(spec["args"], live.args, strict=True):
            _literal_values(sub_spec, sub_live)


def _input_spec(expand_input: Any) -> dict[str, Any]:
    spec: dict[str, Any] = expand_input.serialize()
    if isinstance(expand_input, DictOfListsExpandInput):
        for name, live in expand_input.value.items():
            _literal_values(spec["args"][name], live)
    elif isinstance(expand_input.value, (list, tuple)) and all(isinstance(i, dict) for i in expand_input.value):
        _literal_values(spec["source"], expand_input.value)
    return spec


def _mapping(task: Node) -> dict[str, Any] | None:
    if isinstance(task, MappedOperator):
        kind = "expand" if isinstance(task.expand_input, DictOfListsExpandInput) else "expand_kwargs"
        return {"kind": kind, "input": _input_spec(task.expand_input)}
    group = task.mapped_group
    if group is not None:
        assert group.expand_input is not None
        return {"kind": "group", "group_id": group.group_id, "input": _input_spec(group.expand_input)}
    return None


def _iter_xcom_sources(src: dict[str, Any]) -> list[dict[str, Any]]:
    if src["t"] == "xcom":
        return [src]
    if src["t"] == "map":
        return _iter_xcom_sources(src["arg"])
    if src["t"] in ("zip", "concat"):
        return [s for a in src["args"] for s in _iter_xcom_sources(a)]
    return []


def _input_sources(spec: dict[str, Any]) -> list[dict[str, Any]]:
    if spec["type"] == "dict_of_lists":
        return [s for v in spec["args"].values() for s in _iter_xcom_sources(v)]
    return _iter_xcom_sources(spec["source"])


def serialize_dag(dag: DAG) -> dict[str, Any]:
    order = dag.topological_task_ids()
    tasks: dict[str, Any] = {}
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
    # A task whose whole result is mapped over records its length (TaskMap); the limits of the
    # tasks mapping over it are kept so the runtime can apply the most permissive one.
    for t in tasks.values():
        if t["mapping"] is None:
            continue
        for src in _input_sources(t["mapping"]["input"]):
            producer = tasks.get(src["task_id"])
            if producer is not None and not src["mapped"]:
                producer["feeds_mapping"] = True
                producer["feeds_mapping_limits"].append(t["max_map_length"])
    groups: dict[str, Any] = {}
    for gid, g in dag.task_groups.items():
        groups[gid] = _group(g)
    data = {
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
    try:
        json.dumps(data)
    except TypeError as exc:
        raise DagDefinitionError(f"DAG {dag.dag_id!r} cannot be serialized (params must be JSON values): {exc}") from None
    return data


def _children(group: TaskGroup) -> list[dict[str, str]]:
    out = []
    for key, child in group.children.items():
        out.append({"type": "group" if isinstance(child, TaskGroup) else "task", "id": key})
    return out


def _group(g: TaskGroup) -> dict[str, Any]:
    gid = g.group_id
    assert gid is not None
    return {
        "group_id": gid,
        "label": gid.rsplit(".", 1)[-1],
        "parent": g.parent.group_id if g.parent is not None else None,
        "tooltip": g.tooltip,
        "is_mapped": g.is_mapped,
        "children": _children(g),
    }


def dag_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
