from __future__ import annotations

from django.db import models
from django.db.models import F


class DagRunState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class DagRunType(models.TextChoices):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    # Driven to completion in one process by `dags test`; the scheduler daemon leaves it alone.
    TEST = "test"


class DagRun(models.Model):
    dag_id = models.CharField(max_length=250)
    run_id = models.CharField(max_length=250)
    run_type = models.CharField(max_length=20, choices=DagRunType.choices, default=DagRunType.MANUAL)
    logical_date = models.DateTimeField()
    data_interval_start = models.DateTimeField(null=True, blank=True)
    data_interval_end = models.DateTimeField(null=True, blank=True)
    conf = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=20, choices=DagRunState.choices, default=DagRunState.QUEUED)
    serialized_dag = models.ForeignKey("SerializedDag", on_delete=models.PROTECT, related_name="dag_runs")
    queued_at = models.DateTimeField(auto_now_add=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    # Per task and state: instance counts and timings, frozen when the run finished, so the Grid
    # and the task panels of finished runs never aggregate their instances again. Cleared
    # (set to null) whenever the run is reopened by a clear or a mark.
    state_summary = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dag_id", "run_id"], name="dag_run_id_unique")]
        indexes = [
            # grid: the latest runs of one DAG
            models.Index(fields=["dag_id", "-logical_date"], name="dag_run_latest"),
            # scheduler: runs still to schedule
            models.Index(fields=["state"], name="dag_run_active", condition=models.Q(state__in=["queued", "running"])),
            # runs list across DAGs (runs/web/browse.py): newest started first, of one state or any
            models.Index(F("start_date").desc(nulls_last=True), F("id").desc(), name="dag_run_browse_started"),
            models.Index(F("state"), F("start_date").desc(nulls_last=True), F("id").desc(), name="dag_run_browse_state"),
        ]

    def __str__(self) -> str:
        return f"{self.dag_id} @ {self.run_id}"

    @property
    def is_finished(self) -> bool:
        return self.state in (DagRunState.SUCCESS, DagRunState.FAILED)
