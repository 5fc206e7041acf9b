"""Readable names for mapped instances (``map_index_template``) as soon as their inputs are known.

The scheduler names instances right after expansion, in batches, from the serialized expand
input and stored results, without importing the DAG file. What needs user code (``.map(f)``)
or context only a running task has is left to the worker, which renders the name again with
the full context when the try starts.
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import connection

from dagsapp.expandinput import NotResolvableHere, resolve_spec
from dagsapp.instance import render_map_index
from dagsapp.secrets import redact, secret_kwargs_text
from dagsapp.serialization import DagData
from dagsapp.xcom_arg import Item
from runs.models import DagRun, TaskInstance, TaskInstanceState, TaskMap
from runs.resolver import DbResolver, LazyXComSequence

log = logging.getLogger(__name__)
S = TaskInstanceState
NAME_BATCH = 2000
# (dag_run id, task id) whose template needs the worker; not retried on every pass.
_left_to_worker: set[tuple[int, str]] = set()


class BatchResolver:
    """A DbResolver that reads each upstream result once, for naming thousands of instances."""

    def __init__(self, base: DbResolver) -> None:
        self.base = base
        self._values: dict[tuple[str, bool], Any] = {}
        self._keys: dict[str, list[str] | None] = {}

    def xcom_length(self, task_id: str, *, mapped: bool) -> int | None:
        return self.base.xcom_length(task_id, mapped=mapped)

    def ref_value(self, kind: str, key: str) -> Any:
        return self.base.ref_value(kind, key)

    def xcom_value(self, task_id: str, *, mapped: bool, map_index: int | None = None) -> Any:
        return self.base.xcom_value(task_id, mapped=mapped, map_index=map_index)

    def xcom_item(self, task_id: str, *, mapped: bool, index: int) -> Item:
        if (task_id, mapped) not in self._values:
            value = self.base.xcom_value(task_id, mapped=mapped)
            self._values[task_id, mapped] = list(value) if isinstance(value, LazyXComSequence) else value
            if not mapped:
                tm = TaskMap.objects.filter(dag_run=self.base.dag_run, task_id=task_id, map_index=-1).first()
                self._keys[task_id] = tm.keys if tm is not None else None
        value = self._values[task_id, mapped]
        keys = self._keys.get(task_id)
        if not mapped and keys is not None:
            key = keys[index]
            return key, (key, value[key]), value[key]
        return index, value[index], value[index]


class _TaskView:
    """``task`` in a name template: the instance's mapped arguments, as attributes and op_kwargs."""

    def __init__(self, task_id: str, kwargs: dict[str, Any]) -> None:
        self.task_id = task_id
        self.op_kwargs = kwargs
        self.__dict__.update({k: v for k, v in kwargs.items() if k not in ("task_id", "op_kwargs")})


def name_mapped_instances(*, dag_run: DagRun, data: DagData, limit: int = NAME_BATCH) -> bool:
    did = False
    resolver = BatchResolver(DbResolver(dag_run, data))
    base = {"run_id": dag_run.run_id, "dag_id": dag_run.dag_id, "params": {**(data.get("params") or {}), **(dag_run.conf or {})},
            "logical_date": dag_run.logical_date, "ds": dag_run.logical_date.strftime("%Y-%m-%d"),
            "ds_nodash": dag_run.logical_date.strftime("%Y%m%d")}
    for task_id, task in data["tasks"].items():
        template = task.get("map_index_template")
        if not template or task["mapping"] is None or (dag_run.pk, task_id) in _left_to_worker:
            continue
        if len(task.get("levels", [])) > 1:
            did |= _name_nested(dag_run, data, task_id, template, base, limit=max(1, limit // 10))
            continue
        indexes = list(TaskInstance.objects.filter(
            dag_run=dag_run, task_id=task_id, map_index__gte=0, rendered_map_index__isnull=True,
            state__in=[S.NONE, S.SCHEDULED, S.QUEUED]).order_by("map_index").values_list("map_index", flat=True)[:limit])
        if not indexes:
            continue
        names: list[str] = []
        for i in indexes:
            try:
                info = resolve_spec(task["mapping"]["input"], resolver, i)
                ctx = {**base, "task_id": task_id, "map_index": i, "mapping": info, "task": _TaskView(task_id, info.kwargs)}
                # A value passed under a secret-looking name never reaches a name (issue 10, #7);
                # redacted before cutting, so a cut cannot leave part of a secret behind.
                names.append(redact(render_map_index(template, ctx) or "", secret_kwargs_text(info.kwargs))[:250])
            except NotResolvableHere as exc:
                log.debug("Naming %s in %s is left to the worker: %s", task_id, dag_run.run_id, exc)
                break
            except Exception as exc:  # noqa: BLE001 - the author's template may raise anything; it costs a name, never the pass
                # The worker renders it again around the try and writes why it failed into that try's log.
                log.warning("map_index_template of %s in %s failed for map_index %d; the rest is left to the worker: %s: %s",
                            task_id, dag_run.run_id, i, type(exc).__name__, exc)
                break
        if len(names) < len(indexes):
            _left_to_worker.add((dag_run.pk, task_id))
            indexes = indexes[:len(names)]
            if not names:
                continue
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE runs_taskinstance AS ti SET rendered_map_index = d.name FROM unnest(%s::int[], %s::text[]) AS d(mi, name)"
                " WHERE ti.dag_run_id = %s AND ti.task_id = %s AND ti.map_index = d.mi AND ti.rendered_map_index IS NULL",
                [indexes, names, dag_run.pk, task_id],
            )
            did |= cur.rowcount > 0
    return did


def _name_nested(dag_run: DagRun, data: DagData, task_id: str, template: str, base: dict[str, Any], *, limit: int) -> bool:
    """Names of a nested-mapped task's instances: each resolves its own level at its path (a
    few queries each, so fewer per pass than for a task mapped one level deep)."""
    task = data["tasks"][task_id]
    rows = list(TaskInstance.objects.filter(
        dag_run=dag_run, task_id=task_id, map_index__gte=0, rendered_map_index__isnull=True,
        state__in=[S.NONE, S.SCHEDULED, S.QUEUED]).order_by("map_path").values_list("pk", "map_index", "map_path")[:limit])
    did = False
    for pk, map_index, stored in rows:
        path = list(stored or [])
        resolver = DbResolver(dag_run, data, path=path)
        try:
            info = resolve_spec(task["levels"][-1]["input"], resolver, path[-1])
            ctx = {**base, "task_id": task_id, "map_index": map_index, "map_path": path, "mapping": info,
                   "task": _TaskView(task_id, info.kwargs)}
            name = redact(render_map_index(template, ctx) or "", secret_kwargs_text(info.kwargs))[:250]
        except Exception as exc:  # noqa: BLE001 - as above: the worker names it, and reports why
            log.debug("Naming %s in %s is left to the worker: %s", task_id, dag_run.run_id, exc)
            _left_to_worker.add((dag_run.pk, task_id))
            return did
        did |= TaskInstance.objects.filter(pk=pk, rendered_map_index__isnull=True).update(rendered_map_index=name) > 0
    return did
