"""Running one task instance: the same code in a Celery worker and in ``dags test``."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from dagsapp.baseoperator import BaseOperator
from dagsapp.context import reset_current_context, set_current_context
from dagsapp.exceptions import (
    AirflowFailException,
    AirflowSkipException,
    TaskDeferred,
    UnmappableXComLengthPushed,
    UnmappableXComTypePushed,
)
from dagsapp.identity import DEFAULT_IDENTITIES, item_identities
from dagsapp.instance import prepare_instance, render_fields, render_map_index
from dagsapp.jsonvalues import json_problem
from dagsapp.secrets import SecretRegistry, mask_secrets, redact, redact_value, secrets_scope
from dagsapp.serialization import DagData, TaskData
from dagsapp.triggers import decode_value, import_string
from runs import history, metrics
from runs.deferral import FAIL_METHOD, defer_task_instance
from runs.execution.dagbag import get_dag
from runs.execution.interrupts import TaskInstanceTakenAway, unwatch_try, watch_try
from runs.execution.prefetch import BatchPrefetch, Preloaded, prefetch_batch
from runs.execution.rendering import json_safe, shorten_for_display
from runs.execution.task_context import RuntimeTaskInstance, build_context, check_xcom_size, display_payload, push_xcom
from runs.logs import TaskLogWriter, TryLogger, WriterHandler
from runs.models import DagRun, SerializedDag, TaskInstance, TaskInstanceState, TaskMap
from runs.models.xcom import RETURN_VALUE
from runs.notify import CHANNEL, notify_scheduler, relax_commits
from runs.resolver import DbResolver
from runs.sqltext import literal

log = logging.getLogger(__name__)
S = TaskInstanceState
DISCARDED = "discarded"
# Not a state: the try raised TaskDeferred; committed by _commit_deferral.
DEFERRING = "deferring"
T = TypeVar("T")
BATCH_TOUCH_SEC = 30.0


class UnstorableResult(ValueError):
    """A task's return value that PostgreSQL cannot store as JSON; the message names the task and why."""


def record_task_map(*, ti: TaskInstance, task: TaskData, value: Any) -> None:
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
                                     defaults={"length": len(value), "keys": keys, "identities": task_map_identities(ti, task, value)})


def task_map_identities(ti: TaskInstance, task: TaskData, value: Any) -> dict[str, list[str]]:
    """The identities of the result's items, recorded with its TaskMap (dagsapp.identity): the
    scheduler, which never runs user code, copies them into the instances it expands."""
    out: dict[str, list[str]] = {}
    if not isinstance(value, dict):
        out[DEFAULT_IDENTITIES] = item_identities(value)
    consumers = task.get("map_key_consumers") or []
    if consumers:
        run, data = load_dag_run(ti.dag_run_id)
        dag = get_dag(run.dag_id, data["fileloc"])
        for consumer in consumers:
            map_key = getattr(dag.get_task(consumer), "map_key", None)
            if map_key is not None:
                out[consumer] = item_identities(value, map_key=map_key, call=f"{consumer}.partial(map_key=...)")
    return out


# Claim a try in one statement: only a queued instance becomes running, once per try, so a
# redelivered message or a cleared instance is never run twice. It also reads the upstream's
# TaskMap id, so that a prefetched item is used only if it is still that result's.
_CLAIM_SQL = (
    f"UPDATE runs_taskinstance ti SET state = {literal(S.RUNNING)}, start_date = %(c_now)s, end_date = NULL, duration = NULL,"
    " hostname = %(c_host)s, pid = %(c_pid)s, next_retry_at = NULL, heartbeat_at = %(c_now)s, updated_at = %(c_now)s"
    f" WHERE ti.id = %(c_id)s AND ti.state = {literal(S.QUEUED)} RETURNING ti.dag_run_id, ti.task_id, ti.map_index, ti.try_number,"
    " ti.max_tries, (SELECT tm.id FROM runs_taskmap tm WHERE tm.dag_run_id = ti.dag_run_id AND tm.task_id = %(c_up)s"
    " AND tm.map_index = -1), ti.item_identity, ti.next_method, ti.next_kwargs"
)


class Claim(NamedTuple):
    """The outcome of claiming one instance: its row (None if this call does not own the try)."""

    row: tuple[Any, ...] | None
    started: datetime


def _claim_params(ti_id: int, preloaded: Preloaded | None, now: datetime) -> dict[str, Any]:
    return {"c_now": now, "c_host": settings.HOSTNAME, "c_pid": os.getpid(), "c_id": ti_id,
            "c_up": preloaded.upstream if preloaded else ""}


def _claim(ti_id: int, preloaded: Preloaded | None) -> Claim:
    started = timezone.now()
    with connection.cursor() as cur:
        cur.execute(_CLAIM_SQL, _claim_params(ti_id, preloaded, started))
        return Claim(cur.fetchone(), started)


def execute_task_instance(ti_id: int, *, preloaded: Preloaded | None = None) -> str | None:
    """queued -> running -> a final state. Returns the final state, or None if this call did not own the try."""
    with_db_retry(_relax_commits)
    return _execute(ti_id, preloaded=preloaded)[0]


def _execute(ti_id: int, *, preloaded: Preloaded | None = None, claimed: Claim | None = None,
             claim_next: tuple[int, Preloaded | None] | None = None) -> tuple[str | None, Claim | None]:
    """Run one instance; ``claimed`` is its claim if the previous instance's commit took it.

    With ``claim_next``, a successful commit also claims the batch's next instance in the same
    statement (one round trip per instance instead of two) and returns that claim.
    """
    attempt = _claim_try(ti_id, preloaded=preloaded, claimed=claimed)
    if attempt is None:
        return None, None
    final, result = _run_try(attempt)
    return _end_try(attempt, final, result, claim_next=claim_next)


def _end_try(attempt: _Attempt, final: str, result: Any, *,
             claim_next: tuple[int, Preloaded | None] | None = None) -> tuple[str, Claim | None]:
    """The end of a try committed on its own (every try but a group's plain successes): a
    success's commit (claiming the batch's next instance with it, if asked) or a deferral's,
    then the final state recorded, the log closed, the scheduler woken and the try counted."""
    next_claim: Claim | None = None
    if final == S.SUCCESS:
        final, next_claim = _commit_try(attempt, result, claim_next=claim_next)
    elif final == DEFERRING:
        final = _commit_deferral(attempt, result)
    _finish_try(attempt, final)
    if final in (S.SUCCESS, S.FAILED, S.UP_FOR_RETRY):
        metrics.ti_finished(dag_id=attempt.run.dag_id, task_id=attempt.ti.task_id, state=final)
    return final, next_claim


@dataclass(slots=True)
class _Attempt:
    """One claimed try on its way to a final state, with the log it writes to."""

    ti: TaskInstance
    run: DagRun
    data: DagData
    task_data: TaskData
    started: datetime
    hostname: str
    writer: TaskLogWriter
    handler: WriterHandler
    task_log: TryLogger
    # Every secret this try knows (secret-named arguments, mask_secret): each is redacted from
    # the log as soon as it is known, and from the name and the result's display copy.
    secrets: SecretRegistry


def _claim_try(ti_id: int, *, preloaded: Preloaded | None, claimed: Claim | None) -> _Attempt | None:
    """Claim the try (unless the previous commit did) and open its log; None if this call does not own it."""
    hostname = settings.HOSTNAME
    if claimed is None:
        claimed = _claim(ti_id, preloaded)
    row, started = claimed
    if row is None:
        return None
    if preloaded is not None and row[5] != preloaded.task_map_id:
        preloaded = None
    run, data = load_dag_run(row[0])
    ti = _new_instance(run, pk=ti_id, task_id=row[1], map_index=row[2], try_number=row[3], max_tries=row[4],
                       state=S.RUNNING, start_date=started, hostname=hostname, item_identity=row[6], next_method=row[7],
                       next_kwargs=json.loads(row[8]) if isinstance(row[8], str) else row[8])
    ti._preloaded = preloaded  # type: ignore[attr-defined]
    writer = TaskLogWriter(ti.pk, ti.try_number, on_lost=watch_try((ti.pk, ti.try_number)))
    handler = WriterHandler(writer)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        # Once per process: a task's INFO lines must reach its log. (Setting and restoring the
        # level around every try cleared logging's caches twice per instance.)
        root.setLevel(logging.INFO)
    return _Attempt(ti=ti, run=run, data=data, task_data=data["tasks"][ti.task_id], started=started, hostname=hostname,
                    writer=writer, handler=handler, task_log=TryLogger(writer), secrets=SecretRegistry(on_add=writer.redact))


_templates: dict[int, TaskInstance] = {}


def _new_instance(run: DagRun, **values: Any) -> TaskInstance:
    """A TaskInstance of ``run`` with these values: a copy of one built per run, since building a
    model instance field by field costs more than the rest of a no-op task's bookkeeping."""
    template = _templates.get(run.pk)
    if template is None or template.dag_run is not run:
        if len(_templates) > 256:
            _templates.clear()
        template = _templates[run.pk] = TaskInstance(dag_run=run)
    ti = TaskInstance.__new__(TaskInstance)
    ti.__dict__.update(template.__dict__)
    state = ModelState()
    state.adding, state.db = False, template._state.db or "default"
    state.fields_cache = {"dag_run": run}
    ti._state = state
    for name, value in values.items():
        setattr(ti, name, value)
    return ti


def _run_try(attempt: _Attempt) -> tuple[str, Any]:
    """The user's code, its output into the try's log: the state it earns, and its result.

    Any exception of the task (BaseException: SystemExit too) fails or retries the try, except
    KeyboardInterrupt, which is not the task's doing and propagates.
    """
    ti, task_data, task_log, writer = attempt.ti, attempt.task_data, attempt.task_log, attempt.writer
    try:
        try:
            task_log.info("Starting attempt %d of %d", ti.try_number, ti.max_tries + 1)
            task_log.info("Executing <Task(%s): %s> map_index=%d on %s", task_data["operator"], ti.task_id, ti.map_index, attempt.hostname)
            if ti.item_identity is not None:
                # Each try's log names its item: after a re-expansion over a changed list, the
                # index's earlier tries stay readable, labelled with the item they ran.
                task_log.info("Item identity: %s", ti.item_identity)
            if ti.next_method:
                if ti.next_method == FAIL_METHOD:
                    task_log.info("Resuming after deferral: the trigger failed or timed out")
                else:
                    task_log.info("Resuming after deferral: calling %s()", ti.next_method)
            with contextlib.redirect_stdout(writer), contextlib.redirect_stderr(writer):
                result = _run(ti, attempt.run, attempt.data, task_data, task_log, writer=writer, secrets=attempt.secrets)
            return S.SUCCESS, result
        finally:
            # From here on a heartbeat finding the try gone can no longer interrupt this thread.
            unwatch_try()
    except TaskDeferred as deferred:
        return DEFERRING, deferred
    except AirflowSkipException as exc:
        task_log.info("Skipping task: %s", exc)
        return S.SKIPPED, None
    except TaskInstanceTakenAway:
        task_log.warning("This try is no longer running in the database (cleared, marked or declared dead): stopped it")
        return DISCARDED, None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        task_log.error("Task failed with exception\n%s", "".join(traceback.format_exception(exc)))
        retry = ti.try_number <= ti.max_tries and not isinstance(exc, AirflowFailException)
        return (S.UP_FOR_RETRY if retry else S.FAILED), None


def _commit_try(attempt: _Attempt, result: Any, *, claim_next: tuple[int, Preloaded | None] | None) -> tuple[str, Claim | None]:
    """Store a successful try's result: success, discarded (the try lost the instance meanwhile),
    or up_for_retry/failed if the result cannot be stored; with the next instance's claim, if asked."""
    ti, task_data, task_log, writer = attempt.ti, attempt.task_data, attempt.task_log, attempt.writer
    # The common case takes the try's last log lines along in the commit's statement: one
    # round trip fewer per instance. A result that feeds a mapping is checked first, so its
    # "Marking task as SUCCESS" is written only once the check passed.
    fast = not task_data["feeds_mapping"]
    if fast:
        task_log.info("Marking task as SUCCESS")
    log_text = writer.take_for_commit() if fast else None
    final: str
    next_claim: Claim | None = None
    try:
        pending = writer.take_pending_update()
        final, next_claim = with_db_retry(lambda: _commit_success(
            ti=ti, task_data=task_data, result=result, pending=pending, log_text=log_text, claim_next=claim_next,
            secrets=attempt.secrets.values, wake_always=wakes_scheduler_on_each_success(attempt.data, ti.task_id)))
    except BaseException as exc:  # noqa: BLE001 - a result that cannot be stored fails the try
        if log_text:
            writer.restore(log_text)
        if isinstance(exc, UnstorableResult):
            task_log.error("Could not store the result: %s", exc)
        else:
            task_log.error("Could not store the result\n%s", "".join(traceback.format_exception(exc)))
        final = S.UP_FOR_RETRY if ti.try_number <= ti.max_tries else S.FAILED
    if final == DISCARDED:
        task_log.warning("Instance was changed while running (cleared or marked); result discarded")
    elif final == S.SUCCESS and not fast:
        task_log.info("Marking task as SUCCESS")
    return final, next_claim


def _commit_deferral(attempt: _Attempt, deferred: TaskDeferred) -> str:
    """running -> deferred with its trigger (runs/deferral.py); DISCARDED if the try lost the instance,
    failed/up_for_retry if the trigger cannot be stored."""
    ti, task_log, writer = attempt.ti, attempt.task_log, attempt.writer
    try:
        classpath, _ = deferred.trigger.serialize()
        task_log.info("Pausing task as DEFERRED: waiting for %s (resumes with %s())", classpath, deferred.method_name)
        writer.flush_pending()
        pending = writer.take_pending_update()
        owned = with_db_retry(lambda: defer_task_instance(
            ti_id=ti.pk, try_number=ti.try_number, trigger=deferred.trigger, method_name=deferred.method_name,
            kwargs=deferred.kwargs, timeout=deferred.timeout, extra=pending))
    except Exception as exc:  # noqa: BLE001 - a trigger that cannot be stored fails the try, as a task error does
        task_log.error("Could not defer\n%s", "".join(traceback.format_exception(exc)))
        return S.UP_FOR_RETRY if ti.try_number <= ti.max_tries else S.FAILED
    if not owned:
        task_log.warning("Instance was changed while running (cleared or marked); deferral discarded")
        return DISCARDED
    return S.DEFERRED


def _finish_try(attempt: _Attempt, final: str) -> None:
    """Record a final state other than success (the commit wrote that), close the log, wake the scheduler."""
    ti, task_data, task_log, writer = attempt.ti, attempt.task_data, attempt.task_log, attempt.writer
    if final == S.DEFERRED:
        logging.getLogger().removeHandler(attempt.handler)
        with_db_retry(writer.close)
        return
    if final not in (S.SUCCESS, DISCARDED):
        end = timezone.now()
        extra: dict[str, Any] = {}
        if final == S.UP_FOR_RETRY:
            extra["next_retry_at"] = end + timedelta(seconds=float(task_data["retry_delay"]))
            task_log.info("Marking task as UP_FOR_RETRY; retry %d of %d at %s", ti.try_number, ti.max_tries, extra["next_retry_at"].isoformat())
        else:
            task_log.info("Marking task as %s", final.upper())
        extra.update(writer.take_pending_update())
        if ti.next_method:
            # A resumed try that ends: its next try starts from the beginning.
            extra.update(next_method=None, next_kwargs=None)

        def record() -> None:
            with transaction.atomic():
                ended = TaskInstance.objects.filter(pk=ti.pk, state=S.RUNNING, try_number=ti.try_number).update(
                    state=final, end_date=end, duration=(end - attempt.started).total_seconds(), **extra)
                if ended and final == S.UP_FOR_RETRY:
                    # The next try's claim overwrites the dates and host: keep this one's first.
                    history.keep_current_tries([ti.pk])

        with_db_retry(record)
    logging.getLogger().removeHandler(attempt.handler)
    with_db_retry(writer.close)
    if final != S.SUCCESS or task_data["feeds_mapping"]:
        with_db_retry(notify_scheduler)  # the plain success path already woke the scheduler


def execute_task_instances(ti_ids: list[int]) -> None:
    """A batch from one message, run in groups (settings.EXECUTION_GROUP_MAX): one statement claims
    a group, and one statement commits the group's successes (states, results, log tails) and
    claims the next group. Each instance keeps its own claim, log, tries and result: a failure,
    retry, skip or deferral is recorded for that instance alone, at once, as a single instance's
    is; a result that feeds a mapping is committed alone too.

    A group grows with what its instances cost: the first instance is claimed alone, and the
    next group holds as many as ran in EXECUTION_GROUP_BUDGET_MS, so a slow task runs one by one
    and a claimed instance never waits long behind its siblings. A later batch of the same run's
    task in this process starts at the size its latest group's cost gives (_instance_cost): the
    first instance alone, its commit and the second claim were a third of a 32-instance batch. A worker killed mid-group
    leaves the group's uncommitted instances running without a heartbeat: the scheduler retries
    them (or fails them with no tries left), as it does the one instance a process was running;
    the instances committed before stay, and the message's unclaimed ones are re-queued by the
    lost-message sweep (they are still queued).
    """
    with_db_retry(_relax_commits)
    try:
        prefetch = prefetch_batch(ti_ids, lambda run_id: load_dag_run(run_id)[1])
    except (OperationalError, InterfaceError):
        prefetch = BatchPrefetch()  # an optimisation only: each instance reads its own item then
    touched = time.monotonic()
    # One task's batch: what its instances cost in this process's latest group of the same run.
    task = prefetch.tasks[0] if len(prefetch.tasks) == 1 else None
    group = ti_ids[:_first_group_size(task)]
    position = len(group)
    claims = with_db_retry(lambda: _claim_group(group, prefetch))
    while group:
        began = time.monotonic()
        done: list[_Success] = []
        for ti_id in group:
            claim = claims.get(ti_id)
            success = _execute_in_group(ti_id, prefetch.get(ti_id), claim)
            if success is not None:
                done.append(success)
        spent = time.monotonic() - began
        if task is not None and claims:
            _remember_cost(task, spent / len(group))
        if time.monotonic() - touched > BATCH_TOUCH_SEC and position < len(ti_ids):
            # Those still waiting in this batch are not lost messages: keep them off the re-queue sweep.
            TaskInstance.objects.filter(pk__in=ti_ids[position:], state=S.QUEUED).update(queued_at=timezone.now())
            touched = time.monotonic()
        size = _next_group_size(spent, len(group))
        group = ti_ids[position : position + size]
        position += len(group)
        claims = _commit_group(done, group, prefetch)


def _relax_commits() -> None:
    if not settings.WORKER_SYNCHRONOUS_COMMIT:
        relax_commits()


# Per process: what one instance of a (run, task) cost in its latest group. A batch's first group
# is sized from it, so only the first batch of a task a process runs starts with one instance
# alone; each later one (a 1,000-instance map comes in 32 messages) starts with a full group.
_instance_cost: dict[tuple[int, str], float] = {}


def _first_group_size(task: tuple[int, str] | None) -> int:
    cost = _instance_cost.get(task) if task is not None else None
    return 1 if cost is None else _next_group_size(cost, 1)


def _remember_cost(task: tuple[int, str], per_instance: float) -> None:
    if task not in _instance_cost and len(_instance_cost) > 256:
        _instance_cost.clear()
    _instance_cost[task] = per_instance


def _next_group_size(spent: float, ran: int) -> int:
    budget = float(settings.EXECUTION_GROUP_BUDGET_MS) / 1000
    most = int(settings.EXECUTION_GROUP_MAX)
    per_instance = spent / max(ran, 1)
    if per_instance <= 0:
        return most
    return max(1, min(most, int(budget / per_instance)))


@dataclass(slots=True)
class _Success:
    """A successful try of a group, waiting for the group's commit."""

    attempt: _Attempt
    end: datetime
    payload: str | None
    display: str | None
    fields: str | None
    name: str | None
    log_text: str | None
    wake_always: bool


def _execute_in_group(ti_id: int, preloaded: Preloaded | None, claim: Claim | None) -> _Success | None:
    """Run one claimed instance of a group. A success whose result can go with the group's commit
    is returned for it; anything else is recorded for this instance now."""
    if claim is None:
        return None  # no longer queued when the group was claimed: not this call's
    # The try starts now, not when its group was claimed.
    attempt = _claim_try(ti_id, preloaded=preloaded, claimed=Claim(claim.row, timezone.now()))
    if attempt is None:
        return None
    final, result = _run_try(attempt)
    if final == S.SUCCESS and not attempt.task_data["feeds_mapping"]:
        success = _prepare_success(attempt, result)
        if success is not None:
            # Its log is complete (the commit takes the tail): the next try must not write into it.
            logging.getLogger().removeHandler(attempt.handler)
            return success
        final = S.UP_FOR_RETRY if attempt.ti.try_number <= attempt.ti.max_tries else S.FAILED
    _end_try(attempt, final, result)
    return None


def _prepare_success(attempt: _Attempt, result: Any) -> _Success | None:
    """The checks of _commit_success, before anything is written: None (with the reason in the
    try's log) if the result cannot be stored."""
    ti, task_log, writer = attempt.ti, attempt.task_log, attempt.writer
    try:
        problem = json_problem(result)
        if problem:
            raise UnstorableResult(f"the return value of task {ti.task_id!r} {problem}")
        try:
            payload = json.dumps(result) if result is not None else None
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the return value of task {ti.task_id!r} is not JSON-serializable: {exc}") from None
        if payload is not None:
            check_xcom_size(task_id=ti.task_id, key=RETURN_VALUE, payload=payload)
        display = display_payload(result, attempt.secrets.values)
    except Exception as exc:  # noqa: BLE001 - a result that cannot be stored fails the try
        if isinstance(exc, UnstorableResult):
            task_log.error("Could not store the result: %s", exc)
        else:
            task_log.error("Could not store the result\n%s", "".join(traceback.format_exception(exc)))
        return None
    task_log.info("Marking task as SUCCESS")
    pending = writer.take_pending_update()
    return _Success(attempt=attempt, end=timezone.now(), payload=payload, display=display,
                    fields=json.dumps(pending["rendered_fields"]) if "rendered_fields" in pending else None,
                    name=pending.get("rendered_map_index"), log_text=writer.take_for_commit(),
                    wake_always=wakes_scheduler_on_each_success(attempt.data, ti.task_id))


def _claim_group(ti_ids: list[int], prefetch: BatchPrefetch) -> dict[int, Claim]:
    """Claim several instances in one statement: {id: claim} for those that were still queued."""
    if not ti_ids:
        return {}
    now = timezone.now()
    with connection.cursor() as cur:
        cur.execute(_CLAIM_GROUP_SQL, _claim_group_params(ti_ids, prefetch, now))
        return {row[0]: Claim(tuple(row[1:]), now) for row in cur.fetchall()}


def _claim_group_params(ti_ids: list[int], prefetch: BatchPrefetch, now: datetime) -> dict[str, Any]:
    ups = []
    for ti_id in ti_ids:
        preloaded = prefetch.get(ti_id)
        ups.append(preloaded.upstream if preloaded else "")
    return {"g_now": now, "g_host": settings.HOSTNAME, "g_pid": os.getpid(), "g_ids": ti_ids, "g_ups": ups}


def _commit_group(done: list[_Success], following: list[int], prefetch: BatchPrefetch) -> dict[int, Claim]:
    """Commit a group's successes and claim the next group in one statement; each success is
    compare-and-swapped on its own row, so an instance cleared meanwhile loses only its result."""
    if not done:
        return with_db_retry(lambda: _claim_group(following, prefetch))
    try:
        owned, claims = with_db_retry(lambda: _commit_group_statement(done, following, prefetch))
    except Exception:  # one instance's value broke the statement: commit each alone
        log.warning("The group commit failed; committing its %d instances one by one", len(done), exc_info=True)
        for success in done:
            _commit_alone(success)
        return with_db_retry(lambda: _claim_group(following, prefetch))
    for success in done:
        _close_success(success, S.SUCCESS if success.attempt.ti.pk in owned else DISCARDED)
    return claims


def _commit_group_statement(done: list[_Success], following: list[int], prefetch: BatchPrefetch) -> tuple[set[int], dict[int, Claim]]:
    last = done[-1].attempt.ti
    one_task = all(s.attempt.ti.dag_run_id == last.dag_run_id and s.attempt.ti.task_id == last.task_id for s in done)
    now = timezone.now()
    # One JSON document, not ten arrays: psycopg quotes arrays client-side slowly, json.dumps is C.
    rows = [{"id": s.attempt.ti.pk, "try": s.attempt.ti.try_number, "start_": s.attempt.started.isoformat(),
             "end_": s.end.isoformat(), "duration": (s.end - s.attempt.started).total_seconds(), "fields": s.fields,
             "name": s.name, "value": s.payload, "display": s.display, "log": s.log_text, "n": n}
            for n, s in enumerate(done)]
    params: dict[str, Any] = {
        "rows": json.dumps(rows), "ids": [s.attempt.ti.pk for s in done],
        "run": last.dag_run_id, "task": last.task_id, "channel": CHANNEL,
        "wake": not one_task or any(s.wake_always for s in done),
        **_claim_group_params(following, prefetch, now),
    }
    with connection.cursor() as cur:
        cur.execute(_COMMIT_GROUP_SQL, params)
        owned, _, claimed = cur.fetchone()
    claims: dict[int, Claim] = {}
    for row in (json.loads(claimed) if isinstance(claimed, str) else claimed) or []:
        claims[row[0]] = Claim(tuple(row[1:]), now)
    return set(owned or []), claims


def _commit_alone(success: _Success) -> None:
    attempt = success.attempt
    final: str
    try:
        pending = {k: v for k, v in (("rendered_fields", json.loads(success.fields) if success.fields else None),
                                     ("rendered_map_index", success.name)) if v is not None}
        result = json.loads(success.payload) if success.payload is not None else None
        final, _ = with_db_retry(lambda: _commit_success(
            ti=attempt.ti, task_data=attempt.task_data, result=result, pending=pending, log_text=success.log_text,
            secrets=attempt.secrets.values, wake_always=True))
    except BaseException as exc:  # noqa: BLE001 - a result that cannot be stored fails the try
        if success.log_text:
            attempt.writer.restore(success.log_text)
        attempt.task_log.error("Could not store the result\n%s", "".join(traceback.format_exception(exc)))
        _end_try(attempt, S.UP_FOR_RETRY if attempt.ti.try_number <= attempt.ti.max_tries else S.FAILED, None)
        return
    _close_success(success, final)


def _close_success(success: _Success, final: str) -> None:
    attempt = success.attempt
    if final == DISCARDED:
        attempt.task_log.warning("Instance was changed while running (cleared or marked); result discarded")
    with_db_retry(attempt.writer.close)
    if final == S.SUCCESS:
        metrics.ti_finished(dag_id=attempt.run.dag_id, task_id=attempt.ti.task_id, state=final)


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
_dag_runs: dict[int, tuple[DagRun, DagData]] = {}
_serialized: dict[int, DagData] = {}


def load_dag_run(dag_run_id: int) -> tuple[DagRun, DagData]:
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


# The success commit is one statement per instance, composed from these fragments (CTEs run
# once each, whatever the final SELECT reads). The compare-and-swap: success only while this
# try still owns the instance.
_SUCCESS_CTE = f"""done AS (
    UPDATE runs_taskinstance SET state = {literal(S.SUCCESS)}, end_date = %(end)s, duration = %(duration)s, updated_at = %(end)s,
        rendered_fields = COALESCE(%(fields)s::jsonb, rendered_fields), rendered_map_index = COALESCE(%(name)s, rendered_map_index)
    WHERE id = %(id)s AND state = {literal(S.RUNNING)} AND try_number = %(try)s RETURNING id
)"""
# The result, only if the compare-and-swap above won (FROM done).
_XCOM_CTE = f"""pushed AS (
    INSERT INTO runs_xcom (dag_run_id, task_id, map_index, key, value, display, created_at)
    SELECT %(run)s, %(task)s, %(index)s, {literal(RETURN_VALUE)}, %(value)s::jsonb, %(display)s::jsonb, %(end)s FROM done
    WHERE %(value)s::jsonb IS NOT NULL
    ON CONFLICT (dag_run_id, task_id, key, map_index) DO UPDATE SET value = EXCLUDED.value, display = EXCLUDED.display,
        created_at = EXCLUDED.created_at
)"""
# The try's last log lines, kept whether or not the result is.
_LOG_CTE = """logged AS (
    INSERT INTO runs_taskinstancelog (task_instance_id, try_number, text, created_at)
    SELECT %(id)s, %(try)s, %(log)s, %(end)s WHERE %(log)s::text IS NOT NULL
)"""
# The batch's next instance, claimed as _CLAIM_SQL does: it starts right after this commit.
_CLAIM_NEXT_CTE = "claimed AS (" + _CLAIM_SQL + ")"
# One probe per waiting state, tried in turn: the highest waiting index of this task, read
# backwards from the ti_run_unfinished_ordered index. Instances run in map_index order, so
# a live one is met first; a range that only holds finished instances' old entries (every
# instance was 'scheduled' once) is read only when no sibling is queued, near the very end.
# Not NOT EXISTS: PostgreSQL drops the ORDER BY there and may pick a sequential scan that
# reads every finished instance first, once per success.
WAITING_STATES = (S.QUEUED, S.SCHEDULED, S.UP_FOR_RETRY)
_WAITING_SIBLING = ", ".join(
    f"(SELECT s.map_index FROM runs_taskinstance s WHERE s.dag_run_id = %(run)s AND s.state = {literal(state)}"
    " AND s.task_id = %(task)s ORDER BY s.map_index DESC LIMIT 1)"
    for state in WAITING_STATES)
# Whether this try owned the instance, and the scheduler's wake-up: always if asked, else only
# once no sibling of this task waits to run.
_OWNED_AND_NOTIFY = (
    f"(SELECT count(*) FROM done), CASE WHEN %(wake)s OR COALESCE({_WAITING_SIBLING}) IS NULL THEN pg_notify(%(channel)s, '') END")
# The claim's row, or NULLs when the next instance was no longer queued: still one row.
_CLAIMED_ROW = "claimed.* FROM (SELECT 1) AS one LEFT JOIN claimed ON true"


def _statement(ctes: list[str], select: str) -> str:
    return "\nWITH " + ", ".join(ctes) + "\nSELECT " + select + "\n"


_COMMIT_SUCCESS_SQL = _statement([_SUCCESS_CTE, _XCOM_CTE, _LOG_CTE], _OWNED_AND_NOTIFY)
_COMMIT_SUCCESS_AND_CLAIM_SQL = _statement([_SUCCESS_CTE, _XCOM_CTE, _LOG_CTE, _CLAIM_NEXT_CTE],
                                           _OWNED_AND_NOTIFY + ", " + _CLAIMED_ROW)

# A group of instances claimed in one statement, each as _CLAIM_SQL claims one (with the TaskMap
# id of its own prefetched upstream, "" when none was prefetched).
_CLAIM_GROUP_SQL = (
    f"UPDATE runs_taskinstance ti SET state = {literal(S.RUNNING)}, start_date = %(g_now)s, end_date = NULL, duration = NULL,"
    " hostname = %(g_host)s, pid = %(g_pid)s, next_retry_at = NULL, heartbeat_at = %(g_now)s, updated_at = %(g_now)s"
    " FROM unnest(%(g_ids)s::bigint[], %(g_ups)s::text[]) AS g(id, up)"
    # id = ANY: the primary key finds the rows (a join with the array alone was planned as a
    # scan of every queued instance of the run).
    f" WHERE ti.id = ANY(%(g_ids)s::bigint[]) AND ti.id = g.id AND ti.state = {literal(S.QUEUED)} RETURNING ti.id, ti.dag_run_id, ti.task_id, ti.map_index, ti.try_number,"
    " ti.max_tries, (SELECT tm.id FROM runs_taskmap tm WHERE tm.dag_run_id = ti.dag_run_id AND tm.task_id = g.up"
    " AND tm.map_index = -1) AS task_map_id, ti.item_identity, ti.next_method, ti.next_kwargs"
)
# A group's successes, one row each (the arrays are parallel, in the order the tries ran).
_GROUP_ROWS_CTE = """u AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS u(id bigint, try int, start_ timestamptz, end_ timestamptz,
        duration float8, fields text, name text, value text, display text, log text, n int)
)"""
# Each success is its own compare-and-swap: a row this try no longer owns is left alone.
_GROUP_SUCCESS_CTE = f"""done AS (
    UPDATE runs_taskinstance ti SET state = {literal(S.SUCCESS)}, start_date = u.start_, end_date = u.end_, duration = u.duration,
        updated_at = u.end_, rendered_fields = COALESCE(u.fields::jsonb, ti.rendered_fields),
        rendered_map_index = COALESCE(u.name, ti.rendered_map_index)
    FROM u WHERE ti.id = ANY(%(ids)s::bigint[]) AND ti.id = u.id AND ti.state = {literal(S.RUNNING)} AND ti.try_number = u.try
    RETURNING ti.id, ti.dag_run_id, ti.task_id, ti.map_index
)"""
_GROUP_XCOM_CTE = f"""pushed AS (
    INSERT INTO runs_xcom (dag_run_id, task_id, map_index, key, value, display, created_at)
    SELECT d.dag_run_id, d.task_id, d.map_index, {literal(RETURN_VALUE)}, u.value::jsonb, u.display::jsonb, u.end_
    FROM done d JOIN u ON u.id = d.id WHERE u.value IS NOT NULL
    ON CONFLICT (dag_run_id, task_id, key, map_index) DO UPDATE SET value = EXCLUDED.value, display = EXCLUDED.display,
        created_at = EXCLUDED.created_at
)"""
# Each try's last log lines, kept whether or not its result is, in the order the tries ran.
_GROUP_LOG_CTE = """logged AS (
    INSERT INTO runs_taskinstancelog (task_instance_id, try_number, text, created_at)
    SELECT u.id, u.try, u.log, u.end_ FROM u WHERE u.log IS NOT NULL ORDER BY u.n
)"""
_CLAIM_GROUP_CTE = "claimed AS (" + _CLAIM_GROUP_SQL + ")"
_COMMIT_GROUP_SQL = _statement(
    [_GROUP_ROWS_CTE, _GROUP_SUCCESS_CTE, _GROUP_XCOM_CTE, _GROUP_LOG_CTE, _CLAIM_GROUP_CTE],
    "ARRAY(SELECT id FROM done), CASE WHEN %(wake)s OR COALESCE(" + _WAITING_SIBLING + ") IS NULL THEN pg_notify(%(channel)s, '') END,"
    " (SELECT json_agg(json_build_array(c.id, c.dag_run_id, c.task_id, c.map_index, c.try_number, c.max_tries, c.task_map_id,"
    " c.item_identity, c.next_method, c.next_kwargs)) FROM claimed c)")


# Most successes need not wake the scheduler: while a sibling of the same task still waits to
# run, that sibling's own success will, as each success checks for waiting siblings in its
# commit (the last ones always wake it). Waking it on every success made the workers' commits
# queue behind PostgreSQL's NOTIFY lock, which each holds through its WAL flush. These tasks
# need each success seen at once: a limit frees a slot, a downstream may start on one success
# (or be skipped by one), or index i downstream waits only for index i here.
_RULES_DECIDED_BY_ONE_SUCCESS = frozenset({"one_success", "all_failed"})


def wakes_scheduler_on_each_success(data: DagData, task_id: str) -> bool:
    task = data["tasks"][task_id]
    if task.get("max_active_tis_per_dagrun"):
        return True
    for d in task["downstream"]:
        down = data["tasks"][d]
        if down["trigger_rule"] in _RULES_DECIDED_BY_ONE_SUCCESS or task_id in down.get("same_index_upstream", ()):
            return True
    return False


def commit_success(*, ti: TaskInstance, task_data: TaskData, result: Any, pending: dict[str, Any] | None = None,
                   log_text: str | None = None) -> str:
    return _commit_success(ti=ti, task_data=task_data, result=result, pending=pending, log_text=log_text)[0]


def _commit_success(*, ti: TaskInstance, task_data: TaskData, result: Any, pending: dict[str, Any] | None = None,
                    log_text: str | None = None, claim_next: tuple[int, Preloaded | None] | None = None,
                    wake_always: bool = True, secrets: set[str] | None = None) -> tuple[str, Claim | None]:
    """Store the result and mark success atomically, only if this try still owns the instance.

    One statement (and one round trip) for the common case: the compare-and-swap, the XCom and
    the scheduler's wake-up; a result that feeds a mapping also records its TaskMap. A result
    that contains one of the try's ``secrets`` is stored as is (downstream tasks need it) with a
    masked copy that pages show.
    """
    # Checked before any write: PostgreSQL's own error would not say which task or value.
    problem = json_problem(result)
    if problem:
        raise UnstorableResult(f"the return value of task {ti.task_id!r} {problem}")
    end = timezone.now()
    duration = (end - ti.start_date).total_seconds() if ti.start_date else None
    if not task_data["feeds_mapping"]:
        try:
            payload = json.dumps(result) if result is not None else None
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the return value of task {ti.task_id!r} is not JSON-serializable: {exc}") from None
        if payload is not None:
            check_xcom_size(task_id=ti.task_id, key=RETURN_VALUE, payload=payload)
        params = _claim_params(claim_next[0], claim_next[1], end) if claim_next is not None else {}
        with connection.cursor() as cur:
            pending = pending or {}
            cur.execute(_COMMIT_SUCCESS_AND_CLAIM_SQL if claim_next is not None else _COMMIT_SUCCESS_SQL, {**params, "end": end, "duration": duration, "id": ti.pk, "try": ti.try_number,
                                              "run": ti.dag_run_id, "task": ti.task_id, "index": ti.map_index,
                                              "value": payload, "channel": CHANNEL, "wake": wake_always,
                                              "display": display_payload(result, secrets),
                                              "fields": json.dumps(pending["rendered_fields"]) if "rendered_fields" in pending else None,
                                              "name": pending.get("rendered_map_index"), "log": log_text})
            owned, _, *claimed = cur.fetchone()
        # A claim that found the next instance no longer queued is a claim all the same (row None).
        next_claim = Claim(tuple(claimed) if claimed[0] is not None else None, end) if claim_next is not None else None
        return (S.SUCCESS if owned else DISCARDED), next_claim
    with transaction.atomic():
        if result is not None:
            push_xcom(dag_run_id=ti.dag_run_id, task_id=ti.task_id, map_index=ti.map_index, key=RETURN_VALUE, value=result,
                      secrets=secrets)
        if task_data["feeds_mapping"]:
            record_task_map(ti=ti, task=task_data, value=result)
        owned = TaskInstance.objects.filter(pk=ti.pk, state=S.RUNNING, try_number=ti.try_number).update(
            state=S.SUCCESS, end_date=end, duration=duration, **(pending or {}))
        if not owned:
            # Cleared or marked while it ran: this try's result must not be kept.
            transaction.set_rollback(True)
            return DISCARDED, None
    return S.SUCCESS, None


def _store_rendered(ti: TaskInstance, writer: TaskLogWriter | None, fields: dict[str, Any]) -> None:
    if writer is not None:
        writer.defer_update(fields)
    else:
        TaskInstance.objects.filter(pk=ti.pk).update(**fields)


def _render_name(template: str, context: dict[str, Any], secrets: SecretRegistry) -> str:
    # Redacted before it is cut to the column, so a cut cannot leave part of a secret behind.
    return redact(render_map_index(template, context) or "", secrets.values)[:250]


def _name_after_try(ti: TaskInstance, writer: TaskLogWriter | None, template: str, context: dict[str, Any],
                    task_log: TryLogger, secrets: SecretRegistry) -> None:
    try:
        name = _render_name(template, context, secrets)
    except Exception as exc:  # noqa: BLE001 - a bad name template must not fail the task
        task_log.warning("Could not render map_index_template: %s", exc)
        return
    # Stored with the try's final state (the success commit, or the failure's update).
    _store_rendered(ti, writer, {"rendered_map_index": name})


def _call_operator(ti: TaskInstance, op: BaseOperator, context: dict[str, Any]) -> Any:
    """execute(); or, after a deferral, the method the trigger's event resumes; or, for an index
    the scheduler could not start from its trigger itself (its arguments need user code, as
    ``.map(f)``), the deferral to the trigger at once, without executing."""
    if ti.next_method:
        return op.resume_execution(ti.next_method, decode_value(ti.next_kwargs or {}), context)
    args = op.start_trigger_args
    if op.start_from_trigger and args is not None and args.trigger_kwargs is not None:
        cls = import_string(args.trigger_cls) if isinstance(args.trigger_cls, str) else args.trigger_cls
        raise TaskDeferred(trigger=cls(**args.trigger_kwargs), method_name=args.next_method, kwargs=args.next_kwargs,
                           timeout=args.timeout)
    return op.execute(context)


def instance_path(ti: TaskInstance) -> list[int]:
    """The instance's path of indexes (nested mapping): its map_path, or [map_index]."""
    stored = TaskInstance.objects.filter(pk=ti.pk).values_list("map_path", flat=True).first()
    return list(stored) if stored else [ti.map_index]


def _run(ti: TaskInstance, run: DagRun, data: DagData, task_data: TaskData, task_log: TryLogger,
         *, writer: TaskLogWriter | None = None, secrets: SecretRegistry | None = None) -> Any:
    """Resolve, render and execute; returns the value to push (None for nothing).

    Secrets (dagsapp.secrets): the values of secret-named arguments are shown as MASK in the
    Rendered tab and join ``secrets`` with whatever the task registers with ``mask_secret``;
    the registry redacts them from the try's log as they become known, and from the name.
    """
    if secrets is None:
        secrets = SecretRegistry(on_add=writer.redact if writer is not None else None)
    dag = get_dag(run.dag_id, data["fileloc"])
    task = dag.get_task(ti.task_id)
    nested = bool(data.get("nested"))
    path = instance_path(ti) if nested and ti.map_index >= 0 else None
    resolver = DbResolver(run, data, prefetch_index=ti.map_index, path=path)
    preloaded: Preloaded | None = getattr(ti, "_preloaded", None)
    if preloaded is not None:
        resolver.preload(preloaded.upstream, preloaded.task_map, ti.map_index, preloaded.item)
    prepared = prepare_instance(task, resolver, ti.map_index, path=path)
    runtime_ti = RuntimeTaskInstance(ti, resolver, data)
    context = build_context(ti, run, data, dag, prepared.operator, runtime_ti, prepared.mapping)
    found: set[str] = set()
    shown = settings.MAX_DISPLAY_CHARS
    mapped = ({"mapped_kwargs": shorten_for_display(mask_secrets(json_safe(prepared.mapping.kwargs), found), max_chars=shown)}
              if prepared.mapping is not None else {})
    secrets.add(found)
    updates: dict[str, Any] = {}
    template = task_data["map_index_template"]
    if template:
        # A first name to show while the task runs; a template that reads what the task puts in
        # its context can only render afterwards, so a failure here is not reported yet.
        try:
            updates["rendered_map_index"] = _render_name(template, context, secrets)
        except Exception:  # noqa: BLE001 - rendered again, and reported, after the task ran
            pass
    try:
        rendered = render_fields(prepared, task, resolver, ti.map_index, context, nested=nested)
    except Exception:
        # The resolved arguments still help to understand a template error: keep them.
        _store_rendered(ti, writer, {**updates, "rendered_fields": mapped or None})
        raise
    fields = shorten_for_display(mask_secrets(json_safe(rendered), found), max_chars=shown)
    secrets.add(found)
    if "rendered_map_index" in updates:
        # A secret-named partial argument is known only now, from the rendered fields.
        updates["rendered_map_index"] = redact(updates["rendered_map_index"], secrets.values)
    # Shown while the task runs (written by the flusher within half a second, off this path),
    # or stored with the final state if the task is done sooner.
    shown_fields = {**mapped, "fields": fields}
    _store_rendered(ti, writer, {**updates, "rendered_fields": shown_fields})
    known_before = len(secrets.values)
    token = set_current_context(context)
    try:
        with secrets_scope(secrets):
            result = _call_operator(ti, prepared.operator, context)
    finally:
        reset_current_context(token)
        if len(secrets.values) > known_before:
            # The task registered secrets (mask_secret): its rendered fields may show them.
            _store_rendered(ti, writer, {"rendered_fields": redact_value(shown_fields, secrets.values)[0]})
        if template:
            # As Airflow does, the name is rendered once the task has run, failed tries included:
            # the template may read values the task set in its context.
            _name_after_try(ti, writer, template, context, task_log, secrets)
    if not task_data.get("do_xcom_push", True):
        return None
    return result
