from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """The last sign of life of one long-running process (Airflow's job heartbeats), which
    /api/v2/monitor/health reports; written every few seconds by runs/heartbeats.py."""

    kind = models.CharField(max_length=30)  # "scheduler", "dag_processor"
    hostname = models.CharField(max_length=250)
    pid = models.IntegerField()
    latest = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "hostname", "pid"], name="heartbeat_process_unique")]
        indexes = [
            # health: the latest heartbeat of each kind
            models.Index(fields=["kind", "-latest"], name="heartbeat_latest"),
        ]
