from __future__ import annotations

from django.db import models


class TaskInstanceLog(models.Model):
    """A chunk of one try's log. Kept in PostgreSQL so the web server reads any worker's logs."""

    task_instance = models.ForeignKey("TaskInstance", on_delete=models.CASCADE, related_name="logs")
    try_number = models.PositiveIntegerField()
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # log reads: one try's chunks in order, and a tail from a given chunk
            models.UniqueConstraint(fields=["task_instance", "try_number", "seq"], name="ti_log_chunk_unique"),
        ]
