"""The scheduler step that starts instances in the triggerer (``start_from_trigger``), per index.

The decision is made from the serialized DAG and the stored results (``dagsapp/start_trigger.py``:
``resolve_start``, over the same ``DbResolver`` the expansion uses), never by importing the DAG
file or running an operator's ``__init__``. Every waiting index is decided in the pass (before the
queue step could send one to a worker), in batches of 5,000 deferred in one statement each (``runs.deferral.defer_many``), so a 10,000-index expansion creates its
triggers in a few statements. Per index:

- ``start_from_trigger`` true: ``scheduled -> deferred`` with its own trigger (try + 1);
- false: left scheduled, and the queue step sends it to a worker as usual;
- not resolvable here (``.map(f)``: user code): left scheduled too; the worker resolves the
  arguments and, if the index starts from its trigger, defers at once without executing;
- wrong arguments: that index fails, its log naming the task, the index and the key.

Only instances with no ``next_method`` are considered: one resuming after its trigger goes to a worker.
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from dagsapp.exceptions import MappingError
from dagsapp.expandinput import NotResolvableHere
from dagsapp.serialization import DagData
from dagsapp.start_trigger import StartDecision, StartTriggerData, StartTriggerError, resolve_start
from dagsapp.templating import render_string
from dagsapp.triggers import BaseTrigger, encode_kwargs, encode_value, import_string
from runs.deferral import Deferral, defer_many
from runs.logs import log_line
from runs.models import DagRun, TaskInstance, TaskInstanceState
from runs.resolver import DbResolver
from runs.sqltext import literal

log = logging.getLogger(__name__)
S = TaskInstanceState
BATCH = 5000

# Keyset pages: an index left scheduled (for a worker) is not read again in the same pass.
_CANDIDATES_SQL = f"""
SELECT id, task_id, map_index FROM runs_taskinstance
WHERE dag_run_id = %s AND state = {literal(S.SCHEDULED)} AND next_method IS NULL AND task_id = ANY(%s)
  AND (task_id, map_index) > (%s, %s)
ORDER BY task_id, map_index LIMIT %s FOR UPDATE SKIP LOCKED
"""


def start_from_triggers(*, dag_run: DagRun, data: DagData) -> bool:
    """Defer the scheduled instances that start from their trigger; returns whether any changed."""
    tasks: dict[str, StartTriggerData] = {t: v["start_trigger"] for t, v in data["tasks"].items() if "start_trigger" in v}
    if not tasks:
        return False
    # Every waiting index of these tasks is decided in this pass, before the queue step: one left
    # scheduled would be sent to a worker (which would defer it, but holding a slot to do so).
    resolver = _WholeResults(DbResolver(dag_run, data))
    did = False
    after: tuple[str, int] = ("", -(2**31))
    while True:
        with connection.cursor() as cur:
            cur.execute(_CANDIDATES_SQL, [dag_run.pk, list(tasks), after[0], after[1], BATCH])
            rows: list[tuple[int, str, int]] = cur.fetchall()
        if not rows:
            return did
        did |= _start_batch(rows, tasks, resolver, dag_run, data)
        if len(rows) < BATCH:
            return did
        after = (rows[-1][1], rows[-1][2])


def _start_batch(rows: list[tuple[int, str, int]], tasks: dict[str, StartTriggerData], resolver: _WholeResults, dag_run: DagRun,
                 data: DagData) -> bool:
    deferrals: list[Deferral] = []
    failed = 0
    classes: dict[str, type[BaseTrigger] | None] = {}
    for ti_id, task_id, map_index in rows:
        st = tasks[task_id]
        try:
            decision = resolve_start(st, resolver, map_index, task_id=task_id)
            if not decision.start:
                continue
            deferrals.append(_deferral(ti_id, st, decision, dag_run, data, map_index, classes, task_id=task_id))
        except NotResolvableHere:
            continue  # a worker resolves it (and defers at once if it starts from its trigger)
        except (StartTriggerError, MappingError, TypeError, ValueError) as exc:
            failed += _fail(ti_id, str(exc))
    moved = defer_many(deferrals)
    if moved:
        log.info("Started %d instances of %s in the triggerer (%s)", moved, dag_run.dag_id, dag_run.run_id)
    return bool(moved or failed)


class _WholeResults:
    """``DbResolver`` for a pass's indexes: each upstream result (and length) is read once for
    them all, not once per index. Everything else, nested sources included, is the DbResolver's answer."""

    def __init__(self, inner: DbResolver) -> None:
        self.inner = inner
        self._whole: dict[tuple[str, bool], Any] = {}
        self._lengths: dict[tuple[str, bool], int | None] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def xcom_length(self, task_id: str, *, mapped: bool) -> int | None:
        # Read once per batch too: every index of a dict-of-lists input asks for each length.
        if (task_id, mapped) not in self._lengths:
            self._lengths[task_id, mapped] = self.inner.xcom_length(task_id, mapped=mapped)
        return self._lengths[task_id, mapped]

    def xcom_value(self, task_id: str, *, mapped: bool, map_index: int | None = None) -> Any:
        return self.inner.xcom_value(task_id, mapped=mapped, map_index=map_index)

    def ref_value(self, kind: str, key: str) -> Any:
        return self.inner.ref_value(kind, key)

    def xcom_item(self, task_id: str, *, mapped: bool, index: int) -> tuple[Any, Any, Any]:
        cached = (task_id, mapped)
        if cached not in self._whole:
            value = self.inner.xcom_value(task_id, mapped=mapped)
            self._whole[cached] = list(value) if mapped else value
        value = self._whole[cached]
        if mapped:
            return index, value[index], value[index]
        if isinstance(value, dict):
            # jsonb keeps no key order: the order is the one the TaskMap recorded.
            keys = self.inner.xcom_keys(task_id)
            key = keys[index] if keys is not None else list(value)[index]
            return key, (key, value[key]), value[key]
        if not isinstance(value, list):
            return self.inner.xcom_item(task_id, mapped=mapped, index=index)
        return index, value[index], value[index]


def _render(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return render_string(value, context)
    if isinstance(value, dict):
        return {k: _render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context) for v in value]
    return value


def _context(dag_run: DagRun, data: DagData, task_id: str, map_index: int, decision: StartDecision) -> dict[str, Any]:
    """What templates in trigger_kwargs see: the run and the index, ``mapping`` included."""
    ld = dag_run.logical_date
    return {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": task_id, "map_index": map_index,
            "logical_date": ld, "ds": ld.strftime("%Y-%m-%d"), "ds_nodash": ld.strftime("%Y%m%d"), "ts": ld.isoformat(),
            "data_interval_start": dag_run.data_interval_start, "data_interval_end": dag_run.data_interval_end,
            "params": {**(data.get("params") or {}), **(dag_run.conf or {})}, "conf": dag_run.conf or {},
            "mapping": decision.mapping}


def _deferral(ti_id: int, st: StartTriggerData, decision: StartDecision, dag_run: DagRun, data: DagData, map_index: int,
              classes: dict[str, type[BaseTrigger] | None], *, task_id: str) -> Deferral:
    kwargs = decision.trigger_kwargs or {}
    if any(isinstance(v, (str, dict, list)) for v in kwargs.values()):
        kwargs = _render(kwargs, _context(dag_run, data, task_id, map_index, decision))
    classpath = st["trigger_cls"]
    if classpath not in classes:
        try:
            cls = import_string(classpath)
            classes[classpath] = cls if isinstance(cls, type) and issubclass(cls, BaseTrigger) else None
        except Exception:  # noqa: BLE001 - a trigger only the triggerer can import is built there
            classes[classpath] = None
    cls = classes[classpath]
    if cls is not None:
        # Built now, as a worker's defer() would: a TimeDeltaTrigger becomes the moment it fires,
        # so a triggerer that adopts it later does not wait the whole delta again.
        try:
            classpath, kwargs = cls(**kwargs).serialize()
        except TypeError as exc:
            raise StartTriggerError(f"task {task_id!r} index {map_index}: {cls.__name__}(**trigger_kwargs) failed: {exc}") from None
    return Deferral(ti_id=ti_id, classpath=classpath, kwargs=encode_kwargs(kwargs), next_method=st["next_method"],
                    next_kwargs=encode_value(decision.next_kwargs or {}), timeout=st["timeout"])


def _fail(ti_id: int, reason: str) -> int:
    now = timezone.now()
    ti = TaskInstance.objects.filter(pk=ti_id, state=S.SCHEDULED).values_list("try_number", flat=True).first()
    if ti is None:
        return 0
    updated = TaskInstance.objects.filter(pk=ti_id, state=S.SCHEDULED).update(
        state=S.FAILED, try_number=F("try_number") + 1, start_date=now, end_date=now, duration=0)
    if updated:
        log_line(ti_id, ti + 1, f"ERROR - Cannot start from the trigger: {reason}")
    return updated
