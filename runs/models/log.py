from __future__ import annotations

from django.db import models


class TaskInstanceLog(models.Model):
    """A chunk of one try's log, in id order. Kept in PostgreSQL so the web server reads any worker's logs."""

    # db_index=False: the (task_instance, try_number, id) index serves every lookup by instance.
    task_instance = models.ForeignKey("TaskInstance", on_delete=models.CASCADE, related_name="logs", db_index=False)
    try_number = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # log reads: one try's chunks in order, and a live tail after the last chunk read
            models.Index(fields=["task_instance", "try_number", "id"], name="ti_log_try_chunks"),
        ]
