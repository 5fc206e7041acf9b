from __future__ import annotations

from django.db import models

RETURN_VALUE = "return_value"


class XCom(models.Model):
    """A value pushed by a task instance, as JSON (PostgreSQL jsonb, so one item can be read in SQL)."""

    # db_index=False: the unique (dag_run, task_id, key, map_index) index serves lookups by run.
    dag_run = models.ForeignKey("DagRun", on_delete=models.CASCADE, related_name="xcoms", db_index=False)
    task_id = models.CharField(max_length=250)
    map_index = models.IntegerField(default=-1)
    key = models.CharField(max_length=250, default=RETURN_VALUE)
    value = models.JSONField(null=True)
    # The value as pages show it, when the try that pushed it knew secrets it contains (masked
    # by dagsapp.secrets); NULL when it held none, and ``value`` is shown. Downstream tasks
    # always read ``value``.
    display = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # also serves: the lazy sequence of a mapped task's results, in map_index order
            models.UniqueConstraint(fields=["dag_run", "task_id", "key", "map_index"], name="xcom_unique"),
        ]
