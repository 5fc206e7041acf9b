"""What a running task sees: its template context, ``ti`` with xcom_push / xcom_pull, ``var``."""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import connection

from dagsapp.expandinput import MappingInfo
from dagsapp.secrets import current_secrets, redact_value
from dagsapp.serialization import DagData
from runs.models import DagRun, TaskInstance, Variable, XCom
from runs.models.xcom import RETURN_VALUE
from runs.resolver import DbResolver


class RuntimeTaskInstance:
    """What ``context['ti']`` offers user code: identity plus xcom_push / xcom_pull."""

    def __init__(self, ti: TaskInstance, resolver: DbResolver, data: DagData) -> None:
        self._ti = ti
        self._resolver = resolver
        self._data = data
        self.dag_id = ti.dag_run.dag_id
        self.task_id = ti.task_id
        self.run_id = ti.dag_run.run_id
        self.map_index = ti.map_index
        self.try_number = ti.try_number
        self.max_tries = ti.max_tries
        self.hostname = ti.hostname

    def xcom_push(self, key: str, value: Any) -> None:
        # The try's secrets so far (dagsapp.secrets): a pushed value that contains one is shown masked.
        push_xcom(dag_run_id=self._ti.dag_run_id, task_id=self.task_id, map_index=self.map_index, key=key, value=value,
                  secrets=current_secrets())

    def xcom_pull(self, task_ids: str | list[str] | None = None, key: str = RETURN_VALUE, map_indexes: int | None = None) -> Any:
        if task_ids is None:
            task_ids = self.task_id
        if isinstance(task_ids, list):
            return [self.xcom_pull(t, key, map_indexes) for t in task_ids]
        task = self._data["tasks"].get(task_ids)
        if task is not None and task["produces_many"] and map_indexes is None and key == RETURN_VALUE:
            return self._resolver.xcom_value(task_ids, mapped=True)
        qs = XCom.objects.filter(dag_run_id=self._ti.dag_run_id, task_id=task_ids, key=key)
        qs = qs.filter(map_index=map_indexes if map_indexes is not None else -1)
        return qs.values_list("value", flat=True).first()

    def __repr__(self) -> str:
        return f"<TaskInstance {self.dag_id}.{self.task_id} {self.run_id} map_index={self.map_index} try={self.try_number}>"


class _VarAccessor:
    def __init__(self, as_json: bool) -> None:
        self._json = as_json

    def __getattr__(self, key: str) -> Any:
        var = Variable.objects.filter(key=key).first()
        if var is None:
            raise KeyError(f"Variable {key!r} does not exist")
        return var.val if self._json else (var.val if isinstance(var.val, str) else json.dumps(var.val))

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return getattr(self, key)
        except KeyError:
            return default


class XComTooLarge(ValueError):
    pass


def check_xcom_size(*, task_id: str, key: str, payload: str) -> None:
    """Refuse a value over MAX_XCOM_SIZE: stored, it would be copied into every downstream and page."""
    size = len(payload.encode("utf-8"))
    if size > settings.MAX_XCOM_SIZE:
        what = "the return value" if key == RETURN_VALUE else f"the XCom {key!r}"
        raise XComTooLarge(f"{what} of task {task_id!r} is {size:,} bytes of JSON, more than the limit of "
                           f"{settings.MAX_XCOM_SIZE:,} (MAX_XCOM_SIZE); store large data elsewhere and return a reference")


def push_xcom(*, dag_run_id: int, task_id: str, map_index: int, key: str, value: Any, secrets: set[str] | None = None) -> None:
    """Store an XCom; with the try's ``secrets``, also its masked display copy if it contains any."""
    try:
        payload = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the value pushed as {key!r} by task {task_id!r} is not JSON-serializable: {exc}") from None
    check_xcom_size(task_id=task_id, key=key, payload=payload)
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO runs_xcom (dag_run_id, task_id, map_index, key, value, display, created_at)"
            " VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, now())"
            " ON CONFLICT (dag_run_id, task_id, key, map_index) DO UPDATE SET value = EXCLUDED.value, display = EXCLUDED.display,"
            " created_at = now()",
            [dag_run_id, task_id, map_index, key, payload, display_payload(value, secrets)],
        )


def display_payload(value: Any, secrets: set[str] | None) -> str | None:
    """The JSON of ``value`` with the try's secrets masked, or None when it contains none (the
    value itself is shown then). The secrets themselves are never stored."""
    if not secrets or value is None:
        return None
    masked, changed = redact_value(value, secrets)
    return json.dumps(masked) if changed else None


def build_context(ti: TaskInstance, run: DagRun, data: DagData, dag: Any, op: Any, runtime_ti: RuntimeTaskInstance, mapping: MappingInfo | None) -> dict[str, Any]:
    params = {**(data.get("params") or {}), **(run.conf or {})}
    ld = run.logical_date
    return {
        "dag": dag, "dag_id": run.dag_id, "task": op, "task_id": ti.task_id, "ti": runtime_ti, "task_instance": runtime_ti,
        "dag_run": run, "run_id": run.run_id, "logical_date": ld, "ds": ld.strftime("%Y-%m-%d"), "ds_nodash": ld.strftime("%Y%m%d"),
        "ts": ld.isoformat(), "data_interval_start": run.data_interval_start, "data_interval_end": run.data_interval_end,
        "params": params, "conf": run.conf or {}, "map_index": ti.map_index, "mapping": mapping, "try_number": ti.try_number,
        "var": {"value": _VarAccessor(False), "json": _VarAccessor(True)},
    }
