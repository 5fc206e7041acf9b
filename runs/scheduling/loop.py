"""The scheduler loop: create scheduled runs, pass over active runs, check for lost work.

Each iteration is a handful of small steps; when none did any work the loop sleeps on
PostgreSQL LISTEN until a worker reports a finished instance or the heartbeat interval passes.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import datetime

import psycopg
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, transaction
from django.utils import timezone

from dagsapp.schedules import interval_end, next_logical_date
from runs import heartbeats, metrics
from runs.deferral import time_out_deferrals
from runs.models import DagModel, DagRun, DagRunState, DagRunType, Job, JobType
from runs.notify import SchedulerListener, relax_commits
from runs.scheduling.executors import Executor
from runs.scheduling.steps import active_dag_run_ids, fail_dead_task_instances, requeue_lost_task_instances, schedule_dag_run
from runs.services import DagRunError, create_dag_run

log = logging.getLogger(__name__)
HEALTH_CHECK_INTERVAL_SEC = 2.0


def create_scheduled_dag_runs(*, now: datetime | None = None) -> bool:
    """One run per DAG whose next interval has ended; next_dagrun advances by compare-and-swap."""
    now = now or timezone.now()
    did = False
    for dm in DagModel.objects.filter(is_active=True, is_paused=False, next_dagrun__isnull=False, schedule__isnull=False):
        assert dm.next_dagrun is not None and dm.schedule is not None
        logical = dm.next_dagrun
        if dm.schedule == "@once":
            end, following = logical, None
        else:
            end = interval_end(dm.schedule, logical)
            following = next_logical_date(dm.schedule, logical)
        if end > now:
            continue
        if DagRun.objects.filter(dag_id=dm.dag_id, state__in=[DagRunState.QUEUED, DagRunState.RUNNING]).count() >= dm.max_active_runs:
            continue
        try:
            # One transaction: if the run cannot be created, next_dagrun is not advanced past it.
            with transaction.atomic():
                if not DagModel.objects.filter(pk=dm.pk, next_dagrun=logical).update(next_dagrun=following):
                    continue  # another scheduler created this run
                create_dag_run(dag_id=dm.dag_id, run_type=DagRunType.SCHEDULED, logical_date=logical,
                               run_id=f"scheduled__{logical.isoformat()}", data_interval=(logical, end))
            did = True
        except DagRunError as exc:
            log.warning("Could not create scheduled run of %s: %s", dm.dag_id, exc)
    return did


class Scheduler:
    """Creates runs and passes over active ones. DAG files are parsed by the DAG processor, a
    process of its own (runs/scheduling/dag_processing.py), so a slow file never holds this loop."""

    def __init__(self, *, executor: Executor) -> None:
        self.executor = executor
        self.stop = threading.Event()
        self._last_health_check = 0.0
        self.job_id: int | None = None

    def run_once(self) -> bool:
        if not settings.SCHEDULER_SYNCHRONOUS_COMMIT:
            relax_commits()
        metrics.SCHEDULER_HEARTBEAT.inc()
        heartbeats.beat("scheduler")
        did = create_scheduled_dag_runs()
        did |= self.check_health()
        for dag_run_id in active_dag_run_ids():
            if self.stop.is_set():
                break
            did |= self.schedule_one(dag_run_id)
        return did

    def schedule_one(self, dag_run_id: int) -> bool:
        """One run's pass; an error in it is logged with the run and the other runs go on.

        The pass is one transaction, so a step that raises undoes that pass only. Losing the
        database is not such an error: run_forever reconnects.
        """
        try:
            return schedule_dag_run(dag_run_id=dag_run_id, executor=self.executor)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("Scheduling DagRun id=%d failed; the other runs go on", dag_run_id)
            return False

    def check_health(self) -> bool:
        """Dead workers and lost messages, checked every few seconds rather than every pass."""
        if time.monotonic() - self._last_health_check < HEALTH_CHECK_INTERVAL_SEC:
            return False
        self._last_health_check = time.monotonic()
        self.heartbeat()
        # Deferred instances whose wait timed out, even with no triggerer alive to notice.
        return (fail_dead_task_instances() + requeue_lost_task_instances() + time_out_deferrals()) > 0

    def heartbeat(self) -> None:
        """The scheduler's row in runs_job, for /health."""
        now = timezone.now()
        if self.job_id is None:
            self.job_id = Job.objects.create(job_type=JobType.SCHEDULER, hostname=socket.gethostname(), pid=os.getpid(),
                                             start_date=now, heartbeat_at=now).pk
        else:
            Job.objects.filter(pk=self.job_id).update(heartbeat_at=now)

    def run_forever(self) -> None:
        def on_signal(signum: int, frame: object) -> None:
            log.info("Received signal %d: finishing the current step, then exiting", signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        listener: SchedulerListener | None = None
        backoff = 1.0
        while not self.stop.is_set():
            try:
                if listener is None:
                    listener = SchedulerListener()
                did = self.run_once()
                backoff = 1.0
                if not did and not self.stop.is_set():
                    listener.wait(settings.SCHEDULER_HEARTBEAT_SEC)
            except (OperationalError, InterfaceError, DatabaseError, psycopg.Error, OSError) as exc:
                # Database restarts are survivable: drop connections, back off, carry on. psycopg.Error:
                # the LISTEN connection is psycopg's own, not Django's, and raises psycopg's errors.
                log.warning("Database unavailable (%s); retrying in %.0f s", exc, backoff)
                close_old_connections()
                from django.db import connection

                connection.close()
                if listener is not None:
                    try:
                        listener.close()
                    except Exception:  # noqa: BLE001 - a broken listener is replaced either way
                        pass
                    listener = None
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        if listener is not None:
            listener.close()
        if self.job_id is not None:
            try:
                Job.objects.filter(pk=self.job_id).update(end_date=timezone.now())
            except DatabaseError:
                pass  # /health shows its heartbeat going stale instead
        log.info("Scheduler stopped")
