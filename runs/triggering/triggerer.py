"""The triggerer: one asyncio event loop runs the triggers of deferred task instances.

Concurrency rules:

- **Ownership.** A trigger row names the triggerer running it (``runs_trigger.triggerer_id``). Each
  pass, a triggerer heartbeats its ``Job`` row and takes triggers that have no owner, or whose
  owner stopped or has not heartbeaten for ``TRIGGERER_HEARTBEAT_TIMEOUT_SEC`` (a kill -9), up
  to its capacity, with ``FOR UPDATE SKIP LOCKED``: two triggerers never take the same one. A
  trigger that is no longer its own (adopted after a long pause, deleted by a clear) is cancelled.
- **Events** are applied by compare-and-swap on ``(trigger_id, state = deferred)``
  (``runs/deferral.py``): an event for an instance that was cleared, marked or timed out, or
  that a second triggerer already resumed, changes nothing. So a trigger run twice (adopted
  while its old owner still lived) resumes its instance once.
- **The loop never waits on the database**: every query runs on one worker thread
  (``run_in_executor``), with its own connection. A trigger that blocks the loop for more than
  ``BLOCKED_LOOP_SEC`` is named in the log (a watchdog thread sees the loop's ticks stop).
- **Logs.** What a trigger logs or prints is routed by a context variable to its instance's
  try log, stored in one statement per pass, between the worker's lines before the deferral and
  after the resume.
"""
from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from dagsapp.triggers import BaseTaskEndEvent, BaseTrigger, build_trigger
from runs import deferral
from runs.logs import utc_formatter
from runs.models import Job, JobType, TaskInstanceState
from runs.sqltext import literal

log = logging.getLogger(__name__)
S = TaskInstanceState
T = TypeVar("T")
BLOCKED_LOOP_SEC = 0.2
TICK_SEC = 0.05

# The trigger whose code is running now, for its log lines: (task instance id, try number).
_current: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("dagsapp_trigger", default=None)


@dataclass
class _Running:
    trigger_id: int
    ti_id: int
    try_number: int
    classpath: str
    task: asyncio.Task[None] | None = None


LINES_PER_FLUSH = 2000
# Connections that store fired triggers side by side (see Triggerer._flush_parallel).
FLUSH_THREADS = 2
# How long one round of flushing keeps starting batches before the loop looks at its passes again.
FLUSH_PUMP_SEC = 1.0
UNUSED_TRIGGER_SWEEP_SEC = 60.0
FULL_PASS_MAX_DELAY_HEARTBEATS = 5


@dataclass
class _Outbox:
    """What trigger tasks hand to the next database pass (appended on the loop, taken by the pass).

    Each outcome remembers how many log lines had been appended when it was: a flush stores
    the lines up to that mark before the outcome, so an instance's trigger lines always come
    before a resumed worker's, without storing every line of thousands of triggers first."""

    events: list[tuple[int, Any, int]] = field(default_factory=list)
    ends: list[tuple[int, str, int]] = field(default_factory=list)
    failures: list[tuple[int, str, str | None, int]] = field(default_factory=list)
    lines: list[tuple[int, int, str]] = field(default_factory=list)
    # Lines appended and taken since the start (marks are counted in appended lines).
    appended: int = 0
    taken: int = 0
    batch: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event(self, trigger_id: int, payload: Any) -> None:
        with self.lock:
            self.events.append((trigger_id, payload, self.appended))

    def end(self, trigger_id: int, state: str) -> None:
        with self.lock:
            self.ends.append((trigger_id, state, self.appended))

    def failure(self, trigger_id: int, error: str, tb: str | None) -> None:
        with self.lock:
            self.failures.append((trigger_id, error, tb, self.appended))

    def take(self, limit: int | None = None) -> tuple[list[tuple[int, Any]], list[tuple[int, str]], list[tuple[int, str, str | None]],
                                              list[tuple[int, int, str]]]:
        """Up to ``limit`` outcomes of each kind (thousands firing at once are stored in several
        statements, so the first ones are not held back by the last), and the log lines they
        need first (``LINES_PER_FLUSH`` lines when no outcome is waiting)."""
        limit = limit or self.batch
        with self.lock:
            events, ends, failures = self.events[:limit], self.ends[:limit], self.failures[:limit]
            del self.events[:limit], self.ends[:limit], self.failures[:limit]
            marks = [e[-1] for e in events] + [e[-1] for e in ends] + [f[-1] for f in failures]
            # With outcomes, only the lines they need (the others would only slow their statement
            # down); without, the next lines in order.
            count = max(max(marks) - self.taken, 0) if marks else min(len(self.lines), LINES_PER_FLUSH)
            lines = self.lines[:count]
            del self.lines[:count]
            self.taken += len(lines)
        return ([(e[0], e[1]) for e in events], [(e[0], e[1]) for e in ends], [(f[0], f[1], f[2]) for f in failures], lines)

    def restore(self, events: list[tuple[int, Any]], ends: list[tuple[int, str]], failures: list[tuple[int, str, str | None]],
                lines: list[tuple[int, int, str]]) -> None:
        """Put back what a failed flush did not store, in front (its lines were appended first)."""
        with self.lock:
            self.taken -= len(lines)
            mark = self.taken + len(lines)
            self.events[:0] = [(e[0], e[1], mark) for e in events]
            self.ends[:0] = [(e[0], e[1], mark) for e in ends]
            self.failures[:0] = [(f[0], f[1], f[2], mark) for f in failures]
            self.lines[:0] = lines

    def pending(self) -> bool:
        with self.lock:
            return bool(self.events or self.ends or self.failures or self.lines)

    def outcomes_pending(self) -> bool:
        with self.lock:
            return bool(self.events or self.ends or self.failures)

    def line(self, ti_id: int, try_number: int, text: str) -> None:
        with self.lock:
            self.lines.append((ti_id, try_number, text))
            self.appended += 1


@dataclass
class _Batch:
    """One flush's share of the outbox, and what of it was not stored when the database failed."""

    events: list[tuple[int, Any]]
    ends: list[tuple[int, str]]
    failures: list[tuple[int, str, str | None]]
    lines: list[tuple[int, int, str]]
    lines_stored: threading.Event = field(default_factory=threading.Event)
    left: tuple[list[tuple[int, Any]], list[tuple[int, str]], list[tuple[int, str, str | None]], list[tuple[int, int, str]]] | None = None


class _TriggerLogHandler(logging.Handler):
    """Log records emitted while a trigger's code runs go to its instance's try log."""

    def __init__(self, outbox: _Outbox) -> None:
        super().__init__(logging.INFO)
        self.outbox = outbox
        self.setFormatter(utc_formatter())

    def emit(self, record: logging.LogRecord) -> None:
        owner = _current.get()
        if owner is None:
            return
        try:
            self.outbox.line(owner[0], owner[1], self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - never let logging break a trigger
            self.handleError(record)


class _RoutedStream(io.TextIOBase):
    """sys.stdout/stderr of the triggerer: a trigger's prints go to its try log, the rest through."""

    def __init__(self, outbox: _Outbox, through: Any) -> None:
        self.outbox = outbox
        self.through = through
        self._partial: dict[tuple[int, int], str] = {}

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        owner = _current.get()
        if owner is None:
            return int(self.through.write(s))
        text = self._partial.pop(owner, "") + s
        whole, _, rest = text.rpartition("\n")
        if rest:
            self._partial[owner] = rest
        if whole:
            self.outbox.line(owner[0], owner[1], whole + "\n")
        return len(s)

    def flush(self) -> None:
        self.through.flush()


class Triggerer:
    def __init__(self, *, capacity: int | None = None, heartbeat_sec: float | None = None) -> None:
        self.capacity = int(capacity or settings.TRIGGERER_CAPACITY)
        self.heartbeat_sec = float(heartbeat_sec or settings.TRIGGERER_HEARTBEAT_SEC)
        self.stop = threading.Event()
        self.job_id: int | None = None
        self.running: dict[int, _Running] = {}
        self.outbox = _Outbox()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triggerer-db")
        self._flushers = ThreadPoolExecutor(max_workers=FLUSH_THREADS, thread_name_prefix="triggerer-flush")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._tick = time.monotonic()
        self._listener: Any = None
        self._full_due = True
        self._swept = 0.0

    # -- process ----------------------------------------------------------------------------
    def run_forever(self) -> None:
        handler = _TriggerLogHandler(self.outbox)
        root = logging.getLogger()
        # A trigger's own records go to its instance's log only, not also to the console: at
        # thousands of triggers the console lines cost the event loop as much as the triggers.
        for console in root.handlers:
            console.addFilter(_not_from_a_trigger)
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        saved = sys.stdout, sys.stderr
        sys.stdout = _RoutedStream(self.outbox, saved[0])
        sys.stderr = _RoutedStream(self.outbox, saved[1])
        # User triggers beside the DAG files (dags/_my_triggers.py) are importable, as DAG files' imports are.
        folder = str(settings.DAGS_FOLDER)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            asyncio.run(self._main())
        finally:
            sys.stdout, sys.stderr = saved
            root.removeHandler(handler)
            self._db.shutdown(wait=True)
            self.shutdown_flushers()

    def shutdown_flushers(self) -> None:
        """Stop the flush threads, each closing its own database connection first."""
        barrier = threading.Barrier(FLUSH_THREADS)

        def close() -> None:
            try:
                barrier.wait(timeout=5)  # one task per thread: each closes its own connection
            except threading.BrokenBarrierError:
                pass
            connection.close()

        for future in [self._flushers.submit(close) for _ in range(FLUSH_THREADS)]:
            future.result()
        self._flushers.shutdown(wait=True)

    def request_stop(self) -> None:
        self.stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass  # the loop is closed already

    async def _db_call(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, fn)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.job_id = await self._db_call(self._register)
        log.info("Triggerer %d started on %s (pid %d), capacity %d", self.job_id, socket.gethostname(), os.getpid(), self.capacity)
        watchdog = threading.Thread(target=self._watch_loop, name="triggerer-watchdog", daemon=True)
        watchdog.start()
        ticker = asyncio.ensure_future(self._ticks())
        listener = threading.Thread(target=self._listen, name="triggerer-listen", daemon=True)
        listener.start()
        backoff = 1.0
        last_full = 0.0
        try:
            while not self.stop.is_set():
                self._wake.clear()
                try:
                    if self._full_pass_due(time.monotonic() - last_full):
                        # Heartbeat, adoption and the list of its triggers: once a heartbeat, or
                        # at once when a deferral is announced (NOTIFY).
                        self._full_due = False
                        await self.run_pass()
                        # Counted from the pass's end: a long pass (thousands of triggers taken)
                        # is not followed at once by another, which would hold back the events.
                        last_full = time.monotonic()
                        # Let the triggers it started take their first step (each writes its
                        # "running" line), so those lines are stored now, not held until the
                        # next pass: 10,000 of them once rode with the first fired batch (0.6 s).
                        await asyncio.sleep(0)
                    else:
                        # Woken by fired triggers: store their events only, the cheap statement.
                        await self._flush_parallel()
                    backoff = 1.0
                except Exception as exc:  # noqa: BLE001 - a lost database is survived: back off, try again
                    log.warning("Triggerer pass failed (%s); retrying in %.0f s", exc, backoff)
                    self._full_due = True
                    await self._db_call(_reset_connection)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                if self.outbox.pending():
                    continue
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, last_full + self.heartbeat_sec - time.monotonic()))
                except TimeoutError:
                    pass
        finally:
            ticker.cancel()
            for r in list(self.running.values()):
                if r.task is not None:
                    r.task.cancel()
            await asyncio.gather(*(r.task for r in self.running.values() if r.task is not None), return_exceptions=True)
            try:
                await self._db_call(self._flush_outbox)
                await self._db_call(self._unregister)
            except Exception:
                log.warning("Could not release this triggerer's triggers on exit", exc_info=True)
            log.info("Triggerer %s stopped", self.job_id)

    def _full_pass_due(self, since_last: float) -> bool:
        """A full pass is due once a heartbeat, or at once when a deferral is announced; but while
        fired triggers wait to be stored it waits for them (up to a few heartbeats, far inside
        the adoption timeout): thousands firing together should not also wait for a pass over
        every trigger this triggerer runs."""
        due = self._full_due or since_last >= self.heartbeat_sec
        if due and self.outbox.outcomes_pending():
            return since_last >= min(self.heartbeat_sec * FULL_PASS_MAX_DELAY_HEARTBEATS, settings.TRIGGERER_HEARTBEAT_TIMEOUT_SEC / 4)
        return due

    # -- one pass -----------------------------------------------------------------------------
    async def run_pass(self) -> None:
        """Heartbeat, store events and log lines, take triggers, then start and cancel to match."""
        started = time.monotonic()
        mine = await self._db_call(self._sync)
        self._reconcile(mine)
        if time.monotonic() - started > 2.0:
            log.warning("A triggerer pass took %.1f s (%d triggers)", time.monotonic() - started, len(mine))

    def _sync(self) -> list[tuple[int, int, int, str, dict[str, Any] | None]]:
        """On the database thread. Returns this triggerer's triggers whose instance is deferred:
        (trigger id, ti id, try number, classpath, kwargs or None when already running here)."""
        close_old_connections()
        self._flush_outbox()
        deferral.time_out_deferrals()
        if time.monotonic() - self._swept >= UNUSED_TRIGGER_SWEEP_SEC:
            # Triggers drawn for instances another scheduler deferred first (defer_many).
            self._swept = time.monotonic()
            deferral.delete_unused_triggers()
        assert self.job_id is not None
        now = timezone.now()
        Job.objects.filter(pk=self.job_id).update(heartbeat_at=now)
        room = self.capacity - len(self.running)
        with connection.cursor() as cur:
            if room > 0:
                cur.execute(_ADOPT_SQL, {"me": self.job_id, "room": room, "type": JobType.TRIGGERER.value,
                                         "timeout": float(settings.TRIGGERER_HEARTBEAT_TIMEOUT_SEC)})
            # Two simple statements, not a join: with the planner's statistics taken before
            # thousands of instances were deferred, the join was once planned as a nested loop
            # that scanned every deferred instance per trigger (33 s at 10,000).
            cur.execute("SELECT id, classpath FROM runs_trigger WHERE triggerer_id = %s", [self.job_id])
            classpaths: dict[int, str] = dict(cur.fetchall())
            cur.execute(_WAITING_SQL, [list(classpaths)])
            rows = [(tid, ti_id, try_number, classpaths[tid]) for tid, ti_id, try_number in cur.fetchall()]
            new = [r[0] for r in rows if r[0] not in self.running]
            kwargs: dict[int, dict[str, Any]] = {}
            if new:
                cur.execute("SELECT id, kwargs FROM runs_trigger WHERE id = ANY(%s)", [new])
                # jsonb comes back as text from a raw cursor (Django decodes it in the field only).
                kwargs = {tid: (json.loads(k) if isinstance(k, str) else k) or {} for tid, k in cur.fetchall()}
        return [(tid, ti_id, try_number, classpath, kwargs.get(tid)) for tid, ti_id, try_number, classpath in rows]

    def _flush_outbox(self) -> None:
        """Store one batch of the outbox (on the database thread: a full pass, or the last on exit)."""
        batch = _Batch(*self.outbox.take())
        try:
            self._store(batch, None)
        finally:
            if batch.left is not None:
                self.outbox.restore(*batch.left)

    async def _flush_parallel(self) -> None:
        """Store what fired, ``FLUSH_THREADS`` batches at a time on connections of their own, a new
        batch starting as soon as a thread is free: when thousands of triggers fire together,
        storing them is what the last one waits for, and the database updates two batches of
        instances side by side (taken in pairs, each pair waited for its slower batch). Each
        batch's outcomes wait for the earlier batch's lines (see ``_store``). New batches stop
        after ``FLUSH_PUMP_SEC``, so a triggerer that never runs dry still takes its full passes."""
        loop = asyncio.get_running_loop()
        taken: list[_Batch] = []
        inflight: dict[asyncio.Future[None], _Batch] = {}
        failed: BaseException | None = None
        until = time.monotonic() + FLUSH_PUMP_SEC
        while True:
            while failed is None and len(inflight) < FLUSH_THREADS and self.outbox.pending() and (
                    not taken or time.monotonic() < until):
                batch = _Batch(*self.outbox.take())
                after = taken[-1].lines_stored if taken else None
                inflight[loop.run_in_executor(self._flushers, self._store, batch, after)] = batch
                taken.append(batch)
            if not inflight:
                break
            done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                inflight.pop(future)
                if future.exception() is not None and failed is None:
                    failed = future.exception()
        # Put back what was not stored, the last batch first, so the outbox keeps its order.
        for batch in reversed(taken):
            if batch.left is not None:
                self.outbox.restore(*batch.left)
        if failed is not None:
            raise failed

    def _store(self, batch: _Batch, after: threading.Event | None) -> None:
        """Lines, then events, of one batch. ``after``: the earlier batch's lines are stored (an
        instance's trigger lines may be there, and must come before its resumed worker's)."""
        if threading.current_thread() is not threading.main_thread():
            close_old_connections()
        events, ends, failures, lines = batch.events, batch.ends, batch.failures, batch.lines
        started = time.monotonic()
        try:
            try:
                deferral.append_logs(lines)
                lines = []
            finally:
                batch.lines_stored.set()
            if after is not None:
                after.wait()
            deferral.resume_from_events(events)
            events = []
            deferral.end_from_events(ends)
            ends = []
            deferral.fail_from_triggers(failures)
            failures = []
        except BaseException:
            # The database is away: keep what was not stored for the next pass (never lose an event).
            batch.left = (events, ends, failures, lines)
            raise
        if time.monotonic() - started > 1.0:
            log.warning("Storing %d events, %d task ends and %d failures took %.1f s", len(batch.events), len(batch.ends),
                        len(batch.failures), time.monotonic() - started)

    def _reconcile(self, mine: list[tuple[int, int, int, str, dict[str, Any] | None]]) -> None:
        wanted = {row[0] for row in mine}
        for tid, r in list(self.running.items()):
            if tid not in wanted:
                # Cleared, marked, timed out or taken over: stop it.
                if r.task is not None and not r.task.done():
                    r.task.cancel()
                self.running.pop(tid, None)
        for tid, ti_id, try_number, classpath, kwargs in mine:
            if tid in self.running or kwargs is None:
                continue
            running = _Running(tid, ti_id, try_number, classpath)
            self.running[tid] = running
            ctx = contextvars.copy_context()
            ctx.run(_current.set, (ti_id, try_number))
            running.task = asyncio.get_running_loop().create_task(self._run_trigger(running, kwargs), name=f"trigger-{tid} {classpath}",
                                                                  context=ctx)

    async def _run_trigger(self, r: _Running, kwargs: dict[str, Any]) -> None:
        trigger: BaseTrigger | None = None
        try:
            trigger = build_trigger(r.classpath, kwargs)
            trigger.task_instance_id = r.ti_id
            self.outbox.line(r.ti_id, r.try_number, deferral.trigger_line(
                "INFO", f"Trigger {r.classpath} (id {r.trigger_id}) running in triggerer {self.job_id} on {socket.gethostname()}"))
            async for event in trigger.run():
                if isinstance(event, BaseTaskEndEvent):
                    self.outbox.end(r.trigger_id, str(event.state))
                else:
                    self.outbox.line(r.ti_id, r.try_number, deferral.trigger_line("INFO", f"Trigger fired: {_short(event.payload)}"))
                    self.outbox.event(r.trigger_id, event.payload)
                break
            else:
                self._fail(r, "Trigger ended without an event", None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - a trigger's error fails its instance, never the triggerer
            tb = "".join(traceback.format_exception(exc))
            self._fail(r, "Trigger failure", tb)
        finally:
            if trigger is not None:
                try:
                    await trigger.cleanup()
                except Exception:
                    log.warning("cleanup() of trigger %d failed", r.trigger_id, exc_info=True)
            # Stays in self.running until the pass that stores its outcome deletes the trigger row,
            # so a pass in between does not start it again.
            if self._wake is not None:
                self._wake.set()

    def _fail(self, r: _Running, error: str, tb: str | None) -> None:
        self.outbox.line(r.ti_id, r.try_number, deferral.trigger_line("ERROR", f"{error}" + (f"\n{tb}" if tb else "")))
        self.outbox.failure(r.trigger_id, error, tb)

    # -- registration -------------------------------------------------------------------------
    def _register(self) -> int:
        now = timezone.now()
        job = Job.objects.create(job_type=JobType.TRIGGERER, hostname=socket.gethostname(), pid=os.getpid(),
                                 start_date=now, heartbeat_at=now, capacity=self.capacity)
        return job.pk

    def _unregister(self) -> None:
        with connection.cursor() as cur:
            # Let go of its triggers at once, so another triggerer takes them without the timeout.
            cur.execute("UPDATE runs_trigger SET triggerer_id = NULL WHERE triggerer_id = %s", [self.job_id])
        assert self.job_id is not None
        Job.objects.filter(pk=self.job_id).update(end_date=timezone.now())
        deferral.wake_triggerers()

    # -- the loop's health ---------------------------------------------------------------------
    async def _ticks(self) -> None:
        while True:
            self._tick = time.monotonic()
            await asyncio.sleep(TICK_SEC)

    def _watch_loop(self) -> None:
        """Names the trigger that blocks the event loop (runs on a thread of its own).

        A loop that is merely busy (thousands of triggers firing at once) also stops ticking, so
        a trigger is named only when the loop stalled and that same task has been the running one
        for more than BLOCKED_LOOP_SEC, seen at every check in between."""
        reported: object = None
        current: object = None
        since = time.monotonic()
        while not self.stop.is_set():
            time.sleep(TICK_SEC / 2)
            loop = self._loop
            task = asyncio.current_task(loop) if loop is not None else None
            now = time.monotonic()
            if task is not current:
                current, since = task, now
            if now - self._tick <= BLOCKED_LOOP_SEC:
                reported = None
                continue
            if task is None or task is reported or now - since <= BLOCKED_LOOP_SEC:
                continue
            reported = task
            r = next((r for r in list(self.running.values()) if r.task is task), None)
            if r is None:
                # The triggerer's own work (a pass starting thousands of triggers): no trigger to name.
                continue
            log.warning("Triggerer event loop blocked for more than %.1f s by %s: a trigger must not block in run() "
                        "(use asyncio, or run blocking calls with asyncio.to_thread)", BLOCKED_LOOP_SEC, task.get_name())
            self.outbox.line(r.ti_id, r.try_number, deferral.trigger_line(
                "WARNING", f"This trigger blocked the triggerer's event loop for more than {BLOCKED_LOOP_SEC} s"))

    def _listen(self) -> None:
        """Wake the loop on a new deferral (NOTIFY), so it is picked up without waiting a heartbeat."""
        import psycopg
        from psycopg import sql

        while not self.stop.is_set():
            try:
                params = connection.get_connection_params()
                params.pop("cursor_factory", None)
                params.pop("context", None)
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(deferral.TRIGGERER_CHANNEL)))
                    while not self.stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._full_due = True
                            loop, wake = self._loop, self._wake
                            if loop is not None and wake is not None:
                                loop.call_soon_threadsafe(wake.set)
            except Exception:  # noqa: BLE001 - without it the heartbeat pass still picks deferrals up
                time.sleep(1.0)


def _not_from_a_trigger(record: logging.LogRecord) -> bool:
    return _current.get() is None


def _short(payload: Any) -> str:
    text = repr(payload)
    return text if len(text) <= 200 else text[:200] + "..."


def _reset_connection() -> None:
    connection.close()


# Triggers this triggerer may take: without an owner, or whose owner stopped or stopped heartbeating.
_ADOPT_SQL = """
UPDATE runs_trigger SET triggerer_id = %(me)s WHERE id IN (
    SELECT t.id FROM runs_trigger t
    WHERE t.triggerer_id IS NULL OR t.triggerer_id <> %(me)s AND NOT EXISTS (
        SELECT 1 FROM runs_job j WHERE j.id = t.triggerer_id AND j.job_type = %(type)s AND j.end_date IS NULL
          AND j.heartbeat_at > now() - %(timeout)s * interval '1 second')
    ORDER BY t.id LIMIT %(room)s FOR UPDATE SKIP LOCKED)
"""

# The instances still deferred on these triggers (a trigger whose instance was cleared, marked
# or timed out is not among them, and stops).
_WAITING_SQL = f"""
SELECT ti.trigger_id, ti.id, ti.try_number FROM runs_taskinstance ti
WHERE ti.trigger_id = ANY(%s::bigint[]) AND ti.state = {literal(S.DEFERRED)}
"""
