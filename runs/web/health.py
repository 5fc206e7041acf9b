"""What ``/health`` and the dashboard's triggerer banner read: heartbeats of the scheduler and the
triggerers, and how many instances are deferred."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Max
from django.utils import timezone

from runs.models import Job, JobType, TaskInstance, TaskInstanceState


@dataclass(frozen=True)
class Heartbeat:
    latest: datetime | None
    alive: int

    @property
    def status(self) -> str:
        return "healthy" if self.alive else "unhealthy"


def _heartbeat(job_type: str, timeout: float, now: datetime) -> Heartbeat:
    running = Job.objects.filter(job_type=job_type, end_date__isnull=True)
    latest = Job.objects.filter(job_type=job_type).aggregate(m=Max("heartbeat_at"))["m"]
    alive = running.filter(heartbeat_at__gte=now - timedelta(seconds=timeout)).count()
    return Heartbeat(latest=latest, alive=alive)


def scheduler_heartbeat(now: datetime | None = None) -> Heartbeat:
    # The scheduler beats every couple of seconds; a minute of silence means it is gone.
    return _heartbeat(JobType.SCHEDULER, 60.0, now or timezone.now())


def triggerer_heartbeat(now: datetime | None = None) -> Heartbeat:
    return _heartbeat(JobType.TRIGGERER, float(settings.TRIGGERER_HEARTBEAT_TIMEOUT_SEC), now or timezone.now())


def deferred_count() -> int:
    return TaskInstance.objects.filter(state=TaskInstanceState.DEFERRED).count()


def deferred_without_triggerer() -> int:
    """Deferred instances when no triggerer is alive to run their triggers (0 otherwise): the banner."""
    if triggerer_heartbeat().alive:
        return 0
    return deferred_count()


def health_report() -> dict[str, Any]:
    """Airflow's /health shape: each component's status and latest heartbeat; no hosts, no secrets."""
    try:
        now = timezone.now()
        scheduler, triggerer = scheduler_heartbeat(now), triggerer_heartbeat(now)
        deferred = deferred_count()
    except DatabaseError:
        return {"metadatabase": {"status": "unhealthy"}, "scheduler": {"status": "unhealthy", "latest_scheduler_heartbeat": None},
                "triggerer": {"status": "unhealthy", "latest_triggerer_heartbeat": None}}
    return {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": scheduler.status, "latest_scheduler_heartbeat": _iso(scheduler.latest)},
        "triggerer": {"status": triggerer.status, "latest_triggerer_heartbeat": _iso(triggerer.latest), "alive": triggerer.alive,
                      "deferred_task_instances": deferred},
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
