"""Heartbeats of the scheduler and the DAG processor, for /api/v2/monitor/health."""
from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timedelta
from typing import Literal

from django.db.models import Max
from django.utils import timezone

from runs.models import Heartbeat

Kind = Literal["scheduler", "dag_processor"]
BEAT_EVERY_SEC = 5.0
# Airflow's scheduler_health_check_threshold: older than this, the process is taken for dead.
HEALTHY_WITHIN = timedelta(seconds=30)

_last_beat: dict[Kind, float] = {}


def beat(kind: Kind, *, every: float = BEAT_EVERY_SEC) -> None:
    """Record that this process is alive, at most every ``every`` seconds (one upsert)."""
    if kind in _last_beat and time.monotonic() - _last_beat[kind] < every:
        return
    Heartbeat.objects.update_or_create(kind=kind, hostname=socket.gethostname(), pid=os.getpid(),
                                       defaults={"latest": timezone.now()})
    _last_beat[kind] = time.monotonic()


def latest(kind: Kind) -> datetime | None:
    found: datetime | None = Heartbeat.objects.filter(kind=kind).aggregate(latest=Max("latest"))["latest"]
    return found


def status(latest_beat: datetime | None) -> str | None:
    """Airflow's answer: "healthy", "unhealthy", or None when the process never ran."""
    if latest_beat is None:
        return None
    return "healthy" if timezone.now() - latest_beat <= HEALTHY_WITHIN else "unhealthy"
