"""Running one task instance: the same code in a Celery worker and in ``dags test``."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import time
import traceback
from datetime import timedelta
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from dagsapp.context import reset_current_context, set_current_context
from dagsapp.exceptions import (
    AirflowFailException,
    AirflowSkipException,
    UnmappableXComLengthPushed,
    UnmappableXComTypePushed,
)
from dagsapp.instance import prepare_instance, render_fields, render_map_index
from runs.dagbag import get_dag
from runs.logs import TaskLogWriter, WriterHandler
from runs.models import DagRun, SerializedDag, TaskInstance, TaskInstanceState, TaskMap, Variable, XCom
from runs.models.xcom import RETURN_VALUE
from runs.notify import CHANNEL, notify_scheduler
from runs.prefetch import BatchPrefetch, Preloaded, prefetch_batch
from runs.resolver import DbResolver

log = logging.getLogger(__name__)
S = TaskInstanceState
DISCARDED = "discarded"
T = TypeVar("T")
BATCH_TOUCH_SEC = 30.0
INTERRUPT_SIGNAL = signal.SIGUSR2


class RuntimeTaskInstance:
    """What ``context['ti']`` offers user code: identity plus xcom_push / xcom_pull."""

    def __init__(self, ti: TaskInstance, resolver: DbResolver, data: dict[str, Any]) -> None:
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
        push_xcom(dag_run_id=self._ti.dag_run_id, task_id=self.task_id, map_index=self.map_index, key=key, value=value)

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


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _json_safe(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_json_safe(v) for v in value]
        return repr(value)


class TaskInstanceTakenAway(BaseException):
    """Raised in the task's thread when its heartbeat finds the try taken away from it."""


# The try this process is running, and tries found taken away. The handler stays installed for
# the life of the process and acts only on the try running now: a late signal is harmless.
_current_try: tuple[int, int] | None = None
_lost_tries: set[tuple[int, int]] = set()
_handler_installed = False


def _on_interrupt(signum: int, frame: Any) -> None:
    if _current_try is not None and _current_try in _lost_tries:
        raise TaskInstanceTakenAway()


def _watch_try(key: tuple[int, int]) -> Callable[[], None] | None:
    """Start watching a try; returns the callback its heartbeat calls when it is taken away."""
    global _current_try, _handler_installed
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None  # signals reach only the main thread; such a try is not interrupted
    if not _handler_installed:
        signal.signal(INTERRUPT_SIGNAL, _on_interrupt)
        _handler_installed = True
    _current_try = key

    def on_lost() -> None:
        _lost_tries.add(key)
        os.kill(os.getpid(), INTERRUPT_SIGNAL)

    return on_lost


def _unwatch_try() -> None:
    global _current_try
    _current_try = None
    _lost_tries.clear()


def push_xcom(*, dag_run_id: int, task_id: str, map_index: int, key: str, value: Any) -> None:
    try:
        payload = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the value pushed as {key!r} by task {task_id!r} is not JSON-serializable: {exc}") from None
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO runs_xcom (dag_run_id, task_id, map_index, key, value, created_at) VALUES (%s, %s, %s, %s, %s::jsonb, now())"
            " ON CONFLICT (dag_run_id, task_id, key, map_index) DO UPDATE SET value = EXCLUDED.value, created_at = now()",
            [dag_run_id, task_id, map_index, key, payload],
        )


def build_context(ti: TaskInstance, run: DagRun, data: dict[str, Any], dag: Any, op: Any, runtime_ti: RuntimeTaskInstance, mapping: Any) -> dict[str, Any]:
    params = {**(data.get("params") or {}), **(run.conf or {})}
    ld = run.logical_date
    return {
        "dag": dag, "dag_id": run.dag_id, "task": op, "task_id": ti.task_id, "ti": runtime_ti, "task_instance": runtime_ti,
        "dag_run": run, "run_id": run.run_id, "logical_date": ld, "ds": ld.strftime("%Y-%m-%d"), "ds_nodash": ld.strftime("%Y%m%d"),
        "ts": ld.isoformat(), "data_interval_start": run.data_interval_start, "data_interval_end": run.data_interval_end,
        "params": params, "conf": run.conf or {}, "map_index": ti.map_index, "mapping": mapping, "try_number": ti.try_number,
        "var": {"value": _VarAccessor(False), "json": _VarAccessor(True)},
    }


def record_task_map(*, ti: TaskInstance, task: dict[str, Any], value: Any) -> None:
    """A result that a mapped task expands over must be a list or dict within the length limit."""
    if not isinstance(value, (list, tuple, dict)):
        raise UnmappableXComTypePushed(ti.task_id, value)
    limits = [limit or settings.MAX_MAP_LENGTH for limit in task["feeds_mapping_limits"]] or [settings.MAX_MAP_LENGTH]
    if len(value) > max(limits):
        raise UnmappableXComLengthPushed(ti.task_id, len(value), max(limits))
    keys = None
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"Task {ti.task_id!r} returned a dict to map over with a non-string key {bad[0]!r}; keys must be strings")
        keys = list(value)
    TaskMap.objects.update_or_create(dag_run_id=ti.dag_run_id, task_id=ti.task_id, map_index=ti.map_index,
                                     defaults={"length": len(value), "keys": keys})


def execute_task_instance(ti_id: int, *, preloaded: Preloaded | None = None) -> str | None:
    """queued -> running -> a final state. Returns the final state, or None if this call did not own the try."""
    hostname = socket.gethostname()
    started = timezone.now()
    # Claim the try in one statement: only a queued instance becomes running, once per try, so a
    # redelivered message or a cleared instance is never run twice. With a prefetched item it
    # also reads the upstream's TaskMap id, to use the item only if it is still that result's.
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE runs_taskinstance ti SET state = 'running', start_date = %(now)s, end_date = NULL, duration = NULL,"
            " hostname = %(host)s, pid = %(pid)s, next_retry_at = NULL, heartbeat_at = %(now)s, updated_at = %(now)s"
            " WHERE ti.id = %(id)s AND ti.state = 'queued' RETURNING ti.dag_run_id, ti.task_id, ti.map_index, ti.try_number,"
            " ti.max_tries, (SELECT tm.id FROM runs_taskmap tm WHERE tm.dag_run_id = ti.dag_run_id AND tm.task_id = %(up)s"
            " AND tm.map_index = -1)",
            {"now": started, "host": hostname, "pid": os.getpid(), "id": ti_id, "up": preloaded.upstream if preloaded else ""},
        )
        row = cur.fetchone()
    if row is None:
        return None
    if preloaded is not None and row[5] != preloaded.task_map_id:
        preloaded = None
    run, data = load_dag_run(row[0])
    ti = TaskInstance(pk=ti_id, dag_run=run, task_id=row[1], map_index=row[2], try_number=row[3], max_tries=row[4],
                      state=S.RUNNING, start_date=started, hostname=hostname)
    ti._preloaded = preloaded  # type: ignore[attr-defined]
    task_data = data["tasks"][ti.task_id]
    writer = TaskLogWriter(ti.pk, ti.try_number, on_lost=_watch_try((ti.pk, ti.try_number)))
    handler = WriterHandler(writer)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        # Once per process: a task's INFO lines must reach its log. (Setting and restoring the
        # level around every try cleared logging's caches twice per instance.)
        root.setLevel(logging.INFO)
    task_log = logging.getLogger("dagsapp.task")
    final: str
    result: Any = None
    try:
        try:
            task_log.info("Starting attempt %d of %d", ti.try_number, ti.max_tries + 1)
            task_log.info("Executing <Task(%s): %s> map_index=%d on %s", task_data["operator"], ti.task_id, ti.map_index, hostname)
            with contextlib.redirect_stdout(writer), contextlib.redirect_stderr(writer):
                result = _run(ti, run, data, task_data, task_log, writer=writer)
            final = S.SUCCESS
        finally:
            # From here on a heartbeat finding the try gone can no longer interrupt this thread.
            _unwatch_try()
    except AirflowSkipException as exc:
        task_log.info("Skipping task: %s", exc)
        final = S.SKIPPED
    except TaskInstanceTakenAway:
        task_log.warning("This try is no longer running in the database (cleared, marked or declared dead): stopped it")
        final = DISCARDED
    except BaseException as exc:  # noqa: BLE001 - every failure of user code ends the try, never the worker
        if isinstance(exc, KeyboardInterrupt):
            raise
        task_log.error("Task failed with exception\n%s", "".join(traceback.format_exception(exc)))
        retry = ti.try_number <= ti.max_tries and not isinstance(exc, AirflowFailException)
        final = S.UP_FOR_RETRY if retry else S.FAILED
    if final == S.SUCCESS:
        # The common case takes the try's last log lines along in the commit's statement: one
        # round trip fewer per instance. A result that feeds a mapping is checked first, so its
        # "Marking task as SUCCESS" is written only once the check passed.
        fast = not task_data["feeds_mapping"]
        if fast:
            task_log.info("Marking task as SUCCESS")
        log_text = writer.take_for_commit() if fast else None
        try:
            pending = writer.take_pending_update()
            final = with_db_retry(lambda: commit_success(ti=ti, task_data=task_data, result=result, pending=pending,
                                                         log_text=log_text))
        except BaseException as exc:  # noqa: BLE001 - a result that cannot be stored fails the try
            if log_text:
                writer.restore(log_text)
            task_log.error("Could not store the result\n%s", "".join(traceback.format_exception(exc)))
            final = S.UP_FOR_RETRY if ti.try_number <= ti.max_tries else S.FAILED
        if final == DISCARDED:
            task_log.warning("Instance was changed while running (cleared or marked); result discarded")
        elif final == S.SUCCESS and not fast:
            task_log.info("Marking task as SUCCESS")
    if final not in (S.SUCCESS, DISCARDED):
        end = timezone.now()
        extra: dict[str, Any] = {}
        if final == S.UP_FOR_RETRY:
            extra["next_retry_at"] = end + timedelta(seconds=float(task_data["retry_delay"]))
            task_log.info("Marking task as UP_FOR_RETRY; retry %d of %d at %s", ti.try_number, ti.max_tries, extra["next_retry_at"].isoformat())
        else:
            task_log.info("Marking task as %s", final.upper())
        extra.update(writer.take_pending_update())
        with_db_retry(lambda: TaskInstance.objects.filter(pk=ti.pk, state=S.RUNNING, try_number=ti.try_number).update(
            state=final, end_date=end, duration=(end - started).total_seconds(), **extra))
    root.removeHandler(handler)
    with_db_retry(writer.close)
    if final != S.SUCCESS or task_data["feeds_mapping"]:
        with_db_retry(notify_scheduler)  # the plain success path already woke the scheduler
    return final


def execute_task_instances(ti_ids: list[int]) -> None:
    """A batch from one message: each instance keeps its own claim, log, tries and result."""
    try:
        prefetch = prefetch_batch(ti_ids, lambda run_id: load_dag_run(run_id)[1])
    except (OperationalError, InterfaceError):
        prefetch = BatchPrefetch()  # an optimisation only: each instance reads its own item then
    touched = time.monotonic()
    for i, ti_id in enumerate(ti_ids):
        if time.monotonic() - touched > BATCH_TOUCH_SEC:
            # Those still waiting in this batch are not lost messages: keep them off the re-queue sweep.
            TaskInstance.objects.filter(pk__in=ti_ids[i:], state=S.QUEUED).update(queued_at=timezone.now())
            touched = time.monotonic()
        execute_task_instance(ti_id, preloaded=prefetch.get(ti_id))


def with_db_retry(fn: Callable[[], T], *, attempts: int = 8) -> T:
    """Run a database step, riding out a restart of PostgreSQL with exponential back-off (~2 min)."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            return fn()
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            log.warning("Database unavailable; retrying in %.1f s", delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
    raise AssertionError("unreachable")


# A run's identity, conf and DAG version never change, so each worker process loads them once
# per run instead of once per instance.
_dag_runs: dict[int, tuple[DagRun, dict[str, Any]]] = {}
_serialized: dict[int, dict[str, Any]] = {}


def load_dag_run(dag_run_id: int) -> tuple[DagRun, dict[str, Any]]:
    cached = _dag_runs.get(dag_run_id)
    if cached is None:
        run = DagRun.objects.get(pk=dag_run_id)
        if run.serialized_dag_id not in _serialized:
            if len(_serialized) > 64:
                _serialized.clear()
            _serialized[run.serialized_dag_id] = SerializedDag.objects.values_list("data", flat=True).get(pk=run.serialized_dag_id)
        if len(_dag_runs) > 256:
            _dag_runs.clear()
        cached = _dag_runs[dag_run_id] = (run, _serialized[run.serialized_dag_id])
    return cached


_COMMIT_SUCCESS_SQL = """
WITH done AS (
    UPDATE runs_taskinstance SET state = 'success', end_date = %(end)s, duration = %(duration)s, updated_at = %(end)s,
        rendered_fields = COALESCE(%(fields)s::jsonb, rendered_fields), rendered_map_index = COALESCE(%(name)s, rendered_map_index)
    WHERE id = %(id)s AND state = 'running' AND try_number = %(try)s RETURNING id
), pushed AS (
    INSERT INTO runs_xcom (dag_run_id, task_id, map_index, key, value, created_at)
    SELECT %(run)s, %(task)s, %(index)s, 'return_value', %(value)s::jsonb, %(end)s FROM done WHERE %(value)s::jsonb IS NOT NULL
    ON CONFLICT (dag_run_id, task_id, key, map_index) DO UPDATE SET value = EXCLUDED.value, created_at = EXCLUDED.created_at
), logged AS (
    INSERT INTO runs_taskinstancelog (task_instance_id, try_number, text, created_at)
    SELECT %(id)s, %(try)s, %(log)s, %(end)s WHERE %(log)s::text IS NOT NULL
)
SELECT (SELECT count(*) FROM done), pg_notify(%(channel)s, '')
"""


def commit_success(*, ti: TaskInstance, task_data: dict[str, Any], result: Any, pending: dict[str, Any] | None = None,
                   log_text: str | None = None) -> str:
    """Store the result and mark success atomically, only if this try still owns the instance.

    One statement (and one round trip) for the common case: the compare-and-swap, the XCom and
    the scheduler's wake-up; a result that feeds a mapping also records its TaskMap.
    """
    end = timezone.now()
    duration = (end - ti.start_date).total_seconds() if ti.start_date else None
    if not task_data["feeds_mapping"]:
        try:
            payload = json.dumps(result) if result is not None else None
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the return value of task {ti.task_id!r} is not JSON-serializable: {exc}") from None
        with connection.cursor() as cur:
            pending = pending or {}
            cur.execute(_COMMIT_SUCCESS_SQL, {"end": end, "duration": duration, "id": ti.pk, "try": ti.try_number,
                                              "run": ti.dag_run_id, "task": ti.task_id, "index": ti.map_index,
                                              "value": payload, "channel": CHANNEL,
                                              "fields": json.dumps(pending["rendered_fields"]) if "rendered_fields" in pending else None,
                                              "name": pending.get("rendered_map_index"), "log": log_text})
            (owned, _) = cur.fetchone()
        return S.SUCCESS if owned else DISCARDED
    with transaction.atomic():
        if result is not None:
            push_xcom(dag_run_id=ti.dag_run_id, task_id=ti.task_id, map_index=ti.map_index, key=RETURN_VALUE, value=result)
        if task_data["feeds_mapping"]:
            record_task_map(ti=ti, task=task_data, value=result)
        owned = TaskInstance.objects.filter(pk=ti.pk, state=S.RUNNING, try_number=ti.try_number).update(
            state=S.SUCCESS, end_date=end, duration=duration, **(pending or {}))
        if not owned:
            # Cleared or marked while it ran: this try's result must not be kept.
            transaction.set_rollback(True)
            return DISCARDED
    return S.SUCCESS


# An argument whose name looks secret is shown as MASK in the Rendered tab, and its value is
# replaced by MASK in the try's log (Airflow's sensitive field names, minimal version).
SECRET_NAME = re.compile(r"password|passwd|secret|token|api_?key|private_key|credential", re.IGNORECASE)
MASK = "***"
MIN_SECRET_CHARS = 3  # shorter values would mask ordinary text all over the log


def mask_secrets(value: Any, found: set[str]) -> Any:
    """``value`` with every item under a secret-looking key replaced by MASK; collects the hidden text."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and SECRET_NAME.search(key) and item not in (None, ""):
                _collect_secret_text(item, found)
                out[key] = MASK
            else:
                out[key] = mask_secrets(item, found)
        return out
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item, found) for item in value]
    return value


def _collect_secret_text(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _collect_secret_text(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_secret_text(item, found)
    elif value is not None and not isinstance(value, bool) and len(str(value)) >= MIN_SECRET_CHARS:
        found.add(str(value))


def _store_rendered(ti: TaskInstance, writer: TaskLogWriter | None, fields: dict[str, Any]) -> None:
    if writer is not None:
        writer.defer_update(fields)
    else:
        TaskInstance.objects.filter(pk=ti.pk).update(**fields)


def _run(ti: TaskInstance, run: DagRun, data: dict[str, Any], task_data: dict[str, Any], task_log: logging.Logger,
         *, writer: TaskLogWriter | None = None) -> Any:
    """Resolve, render and execute; returns the value to push (None for nothing)."""
    dag = get_dag(run.dag_id, data["fileloc"])
    task = dag.get_task(ti.task_id)
    resolver = DbResolver(run, data, prefetch_index=ti.map_index)
    preloaded: Preloaded | None = getattr(ti, "_preloaded", None)
    if preloaded is not None:
        resolver.preload(preloaded.upstream, preloaded.task_map, ti.map_index, preloaded.item)
    prepared = prepare_instance(task, resolver, ti.map_index)
    runtime_ti = RuntimeTaskInstance(ti, resolver, data)
    context = build_context(ti, run, data, dag, prepared.operator, runtime_ti, prepared.mapping)
    updates: dict[str, Any] = {}
    if task_data["map_index_template"]:
        try:
            updates["rendered_map_index"] = (render_map_index(task_data["map_index_template"], context) or "")[:250]
        except Exception as exc:  # noqa: BLE001 - a bad name template must not fail the task
            task_log.warning("Could not render map_index_template: %s", exc)
    secrets: set[str] = set()
    mapped = {"mapped_kwargs": mask_secrets(_json_safe(prepared.mapping.kwargs), secrets)} if prepared.mapping is not None else {}
    try:
        rendered = render_fields(prepared, task, resolver, ti.map_index, context)
    except Exception:
        # The resolved arguments still help to understand a template error: keep them.
        _store_rendered(ti, writer, {**updates, "rendered_fields": mapped or None})
        if writer is not None:
            writer.redact(secrets)
        raise
    fields = mask_secrets(_json_safe(rendered), secrets)
    if writer is not None:
        writer.redact(secrets)
    # Shown while the task runs (written by the flusher within half a second, off this path),
    # or stored with the final state if the task is done sooner.
    _store_rendered(ti, writer, {**updates, "rendered_fields": {**mapped, "fields": fields}})
    token = set_current_context(context)
    try:
        result = prepared.operator.execute(context)
    finally:
        reset_current_context(token)
    if not task_data.get("do_xcom_push", True):
        return None
    return result
