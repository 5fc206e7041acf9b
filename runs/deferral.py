"""Deferral in the database: what the worker, the scheduler, the triggerer and the user's actions
do to a deferred task instance and its trigger.

States (compare-and-swap on each): ``running -> deferred`` (the worker commits ``defer()``),
``scheduled -> deferred`` (the scheduler starts an index from its trigger), ``deferred ->
scheduled`` (the trigger fired: a worker resumes ``next_method`` with the event; or it failed or
timed out: a worker resumes ``__fail__``), ``deferred -> success/failed/skipped`` (a task end
event, without a worker). An event for an instance that is no longer deferred, or no longer
waits on that trigger (cleared, marked, timed out), changes nothing: each statement matches on
``trigger_id`` and ``state = deferred``. A trigger row goes with its instance's wait.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from dagsapp.triggers import BaseTrigger, encode_kwargs, encode_value
from runs.models import Job, JobType, TaskInstance, TaskInstanceState, Trigger
from runs.notify import CHANNEL
from runs.sqltext import literal

S = TaskInstanceState
# The triggerer sleeps on this channel too, so a new deferral is picked up at once.
TRIGGERER_CHANNEL = "dagsapp_triggerer"
FAIL_METHOD = "__fail__"
TIMEOUT_ERROR = "Trigger timeout"


def _stamp() -> str:
    now = timezone.now()
    return now.strftime("%Y-%m-%d %H:%M:%S") + f",{now.microsecond // 1000:03d}"


def trigger_line(level: str, message: str) -> str:
    """One line of the triggerer's own in a try's log, in the worker's format."""
    return f"[{_stamp()}] {{dagsapp.triggerer}} {level} - {message}\n"


def defer_task_instance(*, ti_id: int, try_number: int, trigger: BaseTrigger, method_name: str,
                        kwargs: dict[str, Any] | None, timeout: timedelta | None, extra: dict[str, Any] | None = None) -> bool:
    """running -> deferred with a new trigger, in one transaction; False if the try lost the
    instance meanwhile (cleared, marked): then no trigger is left behind."""
    classpath, trigger_kwargs = trigger.serialize()
    stored = encode_kwargs(trigger_kwargs)
    next_kwargs = encode_value(kwargs or {})
    now = timezone.now()
    with transaction.atomic():
        row = Trigger.objects.create(classpath=classpath, kwargs=stored, created_date=now)
        owned = TaskInstance.objects.filter(pk=ti_id, state=S.RUNNING, try_number=try_number).update(
            state=S.DEFERRED, trigger=row, next_method=method_name, next_kwargs=next_kwargs,
            trigger_timeout=now + timeout if timeout is not None else None, **(extra or {}))
        if not owned:
            transaction.set_rollback(True)
            return False
        transaction.on_commit(wake_triggerers)
    return True


def wake_triggerers() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_notify(%s, '')", [TRIGGERER_CHANNEL])


@dataclass
class Deferral:
    """One index the scheduler starts in the triggerer: its trigger (typed kwargs already encoded)."""

    ti_id: int
    classpath: str
    kwargs: dict[str, Any]
    next_method: str
    next_kwargs: dict[str, Any]
    timeout: float | None


# Many instances deferred in one statement (a 10,000-index expansion): trigger ids are drawn
# from the sequence first, so each row's trigger and instance are written together; the log's
# first line goes with them. Only instances still scheduled for their first pass are taken.
_DEFER_MANY_SQL = f"""
WITH rows AS MATERIALIZED (
    SELECT r.ti_id, r.classpath, r.kwargs, r.next_method, r.next_kwargs, r.timeout,
           nextval(pg_get_serial_sequence('runs_trigger', 'id')) AS trigger_id
    FROM unnest(%(ids)s::bigint[], %(classpaths)s::text[], %(kwargs)s::jsonb[], %(methods)s::text[], %(nexts)s::jsonb[],
                %(timeouts)s::float8[]) AS r(ti_id, classpath, kwargs, next_method, next_kwargs, timeout)
),
made AS (
    INSERT INTO runs_trigger (id, classpath, kwargs, created_date)
    SELECT trigger_id, classpath, kwargs, now() FROM rows
),
moved AS (
    UPDATE runs_taskinstance ti SET state = {literal(S.DEFERRED)}, try_number = ti.try_number + 1, trigger_id = rows.trigger_id,
        next_method = rows.next_method, next_kwargs = rows.next_kwargs, start_date = now(), end_date = NULL, duration = NULL,
        trigger_timeout = CASE WHEN rows.timeout IS NULL THEN NULL ELSE now() + rows.timeout * interval '1 second' END,
        hostname = '', updated_at = now()
    FROM rows WHERE ti.id = rows.ti_id AND ti.state = {literal(S.SCHEDULED)} AND ti.next_method IS NULL
    RETURNING ti.id, ti.try_number, ti.max_tries, rows.classpath
),
logged AS (
    INSERT INTO runs_taskinstancelog (task_instance_id, try_number, text, created_at)
    SELECT id, try_number, %(stamp)s || ' {{dagsapp.scheduler}} INFO - Starting attempt ' || try_number || ' of ' || (max_tries + 1)
        || ' in the triggerer (start_from_trigger): ' || classpath || E'\\n', now() FROM moved
)
SELECT count(*), pg_notify(%(channel)s, '') FROM moved
"""


def defer_many(deferrals: list[Deferral]) -> int:
    """scheduled -> deferred for many instances at once, each with its own trigger; returns how many moved.

    A trigger drawn for an instance that was not moved (another scheduler got there) is deleted
    by ``delete_unused_triggers``.
    """
    if not deferrals:
        return 0
    with connection.cursor() as cur:
        cur.execute(_DEFER_MANY_SQL, {
            "ids": [d.ti_id for d in deferrals], "classpaths": [d.classpath for d in deferrals],
            "kwargs": [json.dumps(d.kwargs) for d in deferrals], "methods": [d.next_method for d in deferrals],
            "nexts": [json.dumps(d.next_kwargs) for d in deferrals], "timeouts": [d.timeout for d in deferrals],
            "stamp": f"[{_stamp()}]", "channel": TRIGGERER_CHANNEL})
        moved: int = cur.fetchone()[0]
    return moved


# Events for many triggers in one statement: each instance still deferred on that trigger goes
# back to scheduled with the event in next_kwargs; the scheduler is woken. The instances are
# found by ``trigger_id = ANY(...)`` as well as by the join, so that no plan can scan every
# deferred instance once per event (the planner's statistics are often older than the deferrals).
_RESUME_SQL = f"""
WITH ev AS MATERIALIZED (SELECT * FROM unnest(%(tids)s::bigint[], %(payloads)s::jsonb[], %(methods)s::text[]) AS e(tid, payload, method)),
moved AS (
    UPDATE runs_taskinstance ti SET state = {literal(S.SCHEDULED)}, trigger_id = NULL, trigger_timeout = NULL,
        next_method = COALESCE(ev.method, ti.next_method),
        next_kwargs = CASE WHEN ev.method IS NULL THEN COALESCE(ti.next_kwargs, '{{}}'::jsonb) || jsonb_build_object('event', ev.payload)
                      ELSE ev.payload END,
        updated_at = now()
    FROM ev WHERE ti.trigger_id = ANY(%(tids)s::bigint[]) AND ti.trigger_id = ev.tid AND ti.state = {literal(S.DEFERRED)}
    RETURNING ti.id
),
gone AS (DELETE FROM runs_trigger t USING ev WHERE t.id = ev.tid)
SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify(%(channel)s, '') END FROM moved
"""

# Task end events (end_from_trigger): the instance ends from the triggerer, without a worker.
_END_SQL = f"""
WITH ev AS MATERIALIZED (SELECT * FROM unnest(%(tids)s::bigint[], %(states)s::text[]) AS e(tid, state)),
ended AS (
    UPDATE runs_taskinstance ti SET state = ev.state, trigger_id = NULL, trigger_timeout = NULL, end_date = now(),
        duration = EXTRACT(EPOCH FROM now() - ti.start_date), updated_at = now()
    FROM ev WHERE ti.trigger_id = ANY(%(tids)s::bigint[]) AND ti.trigger_id = ev.tid AND ti.state = {literal(S.DEFERRED)}
    RETURNING ti.id, ti.try_number, ev.state
),
logged AS (
    INSERT INTO runs_taskinstancelog (task_instance_id, try_number, text, created_at)
    SELECT id, try_number, %(stamp)s || ' {{dagsapp.triggerer}} INFO - Trigger ended the task: marking task as ' || upper(state)
        || E'\\n', now() FROM ended
),
gone AS (DELETE FROM runs_trigger t USING ev WHERE t.id = ev.tid)
SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify(%(channel)s, '') END FROM ended
"""

END_STATES = {"success": S.SUCCESS, "failed": S.FAILED, "skipped": S.SKIPPED}


def resume_from_events(events: list[tuple[int, Any]]) -> int:
    """``(trigger id, payload)`` for triggers that fired; returns how many instances resume. A
    payload that cannot be stored fails its instance instead, with the reason."""
    rows: list[tuple[int, Any, str | None]] = []
    for tid, payload in events:
        try:
            rows.append((tid, encode_value(payload), None))
        except TypeError as exc:
            rows.append((tid, {"error": f"the trigger's event cannot be stored: {exc}", "traceback": None}, FAIL_METHOD))
    return _resume(rows)


def fail_from_triggers(failures: list[tuple[int, str, str | None]]) -> int:
    """``(trigger id, error, traceback)``: a worker resumes ``__fail__`` and fails (or retries) the try."""
    return _resume([(tid, {"error": error, "traceback": tb}, FAIL_METHOD) for tid, error, tb in failures])


def _resume(rows: list[tuple[int, Any, str | None]]) -> int:
    if not rows:
        return 0
    with connection.cursor() as cur:
        cur.execute(_RESUME_SQL, {"tids": [r[0] for r in rows], "payloads": [json.dumps(r[1]) for r in rows],
                                  "methods": [r[2] for r in rows], "channel": CHANNEL})
        moved: int = cur.fetchone()[0]
    return moved


def end_from_events(events: list[tuple[int, str]]) -> int:
    """``(trigger id, "success" | "failed" | "skipped")``: task end events."""
    if not events:
        return 0
    with connection.cursor() as cur:
        cur.execute(_END_SQL, {"tids": [e[0] for e in events], "states": [END_STATES[e[1]].value for e in events],
                               "stamp": f"[{_stamp()}]", "channel": CHANNEL})
        ended: int = cur.fetchone()[0]
    return ended


def time_out_deferrals(*, now: datetime | None = None) -> int:
    """Deferred instances whose ``trigger_timeout`` passed: a worker resumes them with ``__fail__``
    (the try fails, or is skipped by a sensor with ``soft_fail``)."""
    now = now or timezone.now()
    due = list(TaskInstance.objects.filter(state=S.DEFERRED, trigger_timeout__lt=now).values_list("pk", "trigger_id", "try_number")[:5000])
    moved = 0
    for pk, trigger_id, try_number in due:
        with transaction.atomic():
            if TaskInstance.objects.filter(pk=pk, state=S.DEFERRED, trigger_id=trigger_id).update(
                    state=S.SCHEDULED, trigger=None, trigger_timeout=None, next_method=FAIL_METHOD,
                    next_kwargs={"error": TIMEOUT_ERROR, "traceback": None}):
                Trigger.objects.filter(pk=trigger_id).delete()
                append_log(pk, try_number, trigger_line("ERROR", "Trigger timeout: the deferral waited longer than its timeout"))
                moved += 1
    if moved:
        from runs.notify import notify_scheduler

        notify_scheduler()
    return moved


def append_log(ti_id: int, try_number: int, text: str) -> None:
    append_logs([(ti_id, try_number, text)])


def append_logs(rows: list[tuple[int, int, str]]) -> None:
    """Lines into tries' logs, one statement for any number of tries."""
    if not rows:
        return
    with connection.cursor() as cur:
        cur.execute("INSERT INTO runs_taskinstancelog (task_instance_id, try_number, text, created_at)"
                    " SELECT i, t, x, now() FROM unnest(%s::bigint[], %s::int[], %s::text[]) WITH ORDINALITY AS r(i, t, x, n) ORDER BY n",
                    [[r[0] for r in rows], [r[1] for r in rows], [r[2].replace("\x00", "\\x00") for r in rows]])


def cancel_deferrals(where: Q) -> int:
    """Clearing or marking deferred instances: their triggers go (the triggerer running one stops
    it on its next pass, and an event it sends meanwhile matches no instance)."""
    trigger_ids = list(TaskInstance.objects.filter(where, trigger__isnull=False).values_list("trigger_id", flat=True))
    if not trigger_ids:
        return 0
    TaskInstance.objects.filter(trigger_id__in=trigger_ids).update(trigger=None, trigger_timeout=None)
    deleted, _ = Trigger.objects.filter(pk__in=trigger_ids).delete()
    return deleted


def delete_unused_triggers() -> int:
    """Triggers no instance waits on (drawn for an instance another scheduler took)."""
    with connection.cursor() as cur:
        cur.execute("DELETE FROM runs_trigger t WHERE NOT EXISTS (SELECT 1 FROM runs_taskinstance ti WHERE ti.trigger_id = t.id)"
                    " AND t.created_date < now() - interval '60 seconds'")
        return int(cur.rowcount)


def alive_jobs(job_type: str, *, now: datetime | None = None) -> list[Job]:
    now = now or timezone.now()
    timeout = float(settings.TRIGGERER_HEARTBEAT_TIMEOUT_SEC if job_type == JobType.TRIGGERER else
                    max(settings.SCHEDULER_HEARTBEAT_SEC * 30, 30.0))
    return list(Job.objects.filter(job_type=job_type, end_date__isnull=True, heartbeat_at__gte=now - timedelta(seconds=timeout))
                .order_by("-heartbeat_at"))
