from __future__ import annotations

from typing import Any, NoReturn

from django.db import models


class AuditEvent(models.TextChoices):
    TRIGGER = "trigger", "trigger"
    CLEAR = "clear", "clear task instances"
    CLEAR_MAPPED = "clear_mapped", "clear mapped task"
    CLEAR_CHANGED = "clear_changed", "clear new, changed and failed"
    CLEAR_OUTER = "clear_outer", "clear outer index"
    CLEAR_RUN = "clear_run", "clear run"
    MARK = "mark", "mark task instances"
    MARK_RUN = "mark_run", "mark run"
    PAUSE = "pause", "pause"
    UNPAUSE = "unpause", "unpause"
    VARIABLE_CREATE = "variable_create", "create Variable"
    VARIABLE_UPDATE = "variable_update", "change Variable"
    VARIABLE_DELETE = "variable_delete", "delete Variable"


class AuditSource(models.TextChoices):
    UI = "ui", "dashboard"
    API = "api", "API"
    CLI = "cli", "CLI"


class AuditLogError(RuntimeError):
    pass


class AuditLogQuerySet(models.QuerySet["AuditLog"]):
    # The database refuses too (a trigger in migration 0014); this names the rule before SQL runs.
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogError("The audit log is append-only: its rows cannot be changed")

    def delete(self) -> NoReturn:
        raise AuditLogError("The audit log is append-only: its rows cannot be deleted")


class AuditLog(models.Model):
    """One action someone took through the dashboard, the APIs or the CLI (runs/audit.py writes
    it). Append-only: no view edits it, the model refuses and a PostgreSQL trigger refuses UPDATE
    and DELETE of its rows."""

    when = models.DateTimeField(auto_now_add=True)
    event = models.CharField(max_length=30, choices=AuditEvent.choices)
    # A name, not a key: the record outlives the user it names.
    owner = models.CharField(max_length=150)
    source = models.CharField(max_length=10, choices=AuditSource.choices)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    dag_id = models.CharField(max_length=250, blank=True)
    run_id = models.CharField(max_length=250, blank=True)
    task_id = models.CharField(max_length=250, blank=True)
    map_index = models.IntegerField(null=True, blank=True)
    count = models.IntegerField(null=True, blank=True, help_text="How many task instances the action changed")
    extra = models.JSONField(default=dict, blank=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-when", "-id"]
        indexes = [
            # the DAG's audit page (newest first) and the run's
            models.Index(fields=["dag_id", "-when"], name="audit_dag_when"),
            models.Index(fields=["dag_id", "run_id", "-when"], name="audit_dag_run_when"),
        ]

    def __str__(self) -> str:
        return f"{self.when:%Y-%m-%d %H:%M:%S} {self.owner} {self.event} {self.dag_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogError("The audit log is append-only: its rows cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogError("The audit log is append-only: its rows cannot be deleted")
