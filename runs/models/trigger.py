from __future__ import annotations

from django.db import models


class JobType(models.TextChoices):
    SCHEDULER = "scheduler"
    TRIGGERER = "triggerer"


class Job(models.Model):
    """A long-running process that heartbeats: a scheduler or a triggerer (``/health`` reads them;
    a triggerer whose heartbeat is stale has its triggers adopted by another)."""

    job_type = models.CharField(max_length=20, choices=JobType.choices)
    hostname = models.CharField(max_length=250, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    start_date = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    end_date = models.DateTimeField(null=True, blank=True)
    capacity = models.IntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            # /health and the adoption check: the latest heartbeat per kind
            models.Index(fields=["job_type", "heartbeat_at"], name="job_type_heartbeat"),
        ]


class Trigger(models.Model):
    """A trigger a deferred task instance waits on: its class and typed kwargs
    (``dagsapp.triggers.encode_kwargs``), and the triggerer running it (null: not picked up yet,
    or its triggerer is gone and another will adopt it)."""

    classpath = models.CharField(max_length=1000)
    kwargs = models.JSONField(default=dict)
    created_date = models.DateTimeField()
    triggerer = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="triggers")

    class Meta:
        indexes = [
            # a triggerer's own triggers, and the unowned ones it may take
            models.Index(fields=["triggerer"], name="trigger_triggerer"),
        ]
