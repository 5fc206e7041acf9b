from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from dagsapp.serialization import DagData


class DagModel(models.Model):
    """A DAG the scheduler knows of; its structure lives in the latest SerializedDag."""

    dag_id = models.CharField(max_length=250, unique=True)
    fileloc = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    is_paused = models.BooleanField(default=False)
    schedule = models.CharField(max_length=100, null=True, blank=True)
    max_active_runs = models.PositiveIntegerField(default=16)
    # The logical date of the next scheduled run; advanced with compare-and-swap by the scheduler.
    next_dagrun = models.DateTimeField(null=True, blank=True)
    latest_serialized = models.ForeignKey("SerializedDag", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_parsed = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dag_id"]
        indexes = [
            # scheduler: active, unpaused, scheduled DAGs due for a run
            models.Index(fields=["next_dagrun"], name="dag_next_dagrun", condition=models.Q(is_active=True, is_paused=False)),
        ]

    def __str__(self) -> str:
        return self.dag_id

    @property
    def data(self) -> DagData:
        assert self.latest_serialized is not None
        return self.latest_serialized.dag_data()


class SerializedDag(models.Model):
    """One version of a DAG's structure, as JSON; runs keep the version they were created with."""

    dag_id = models.CharField(max_length=250)
    dag_hash = models.CharField(max_length=64)
    data = models.JSONField()
    # The DAG file's text as the DAG processor imported it for this version ("" for versions stored before).
    source_code = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dag_id", "dag_hash"], name="serialized_dag_version_unique")]

    def dag_data(self) -> DagData:
        """``data`` read through the contract between dagsapp/ and runs/ (dagsapp.serialization)."""
        data: DagData = self.data
        return data


class DagImportError(models.Model):
    filename = models.TextField(unique=True)
    stacktrace = models.TextField()
    timestamp = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["filename"]


class Variable(models.Model):
    """A named JSON value that DAGs read, and that ``VariableRef`` expands over."""

    key = models.CharField(max_length=250, unique=True)
    val = models.JSONField(null=True)
    description = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.key
