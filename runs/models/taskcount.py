from __future__ import annotations

from django.db import models


class TaskCount(models.Model):
    """Live per-(run, task, state) counts of task instances, as insert-only deltas.

    Written only by statement-level triggers on ``runs_taskinstance`` (migration 0018): each
    statement that inserts, updates or deletes instances appends one row per (run, task, state)
    whose count it changed, summed from its transition tables; so concurrent workers append and
    never wait on one hot row. A run's counts are the sums of its rows (``runs.summaries.live``);
    ``runs.summaries.compact`` replaces a run's rows with their sums. Deleting a run deletes them.
    """

    # No foreign key: the rows are deltas, written by triggers while the run's instances go.
    dag_run_id = models.BigIntegerField()
    task_id = models.CharField(max_length=250)
    state = models.CharField(max_length=20)
    n = models.BigIntegerField()
    # Of n, the placeholders (map_index < 0), as runs.summaries counts them.
    placeholders = models.BigIntegerField()
    # Mapped instances (map_index >= 0) with a duration, and the sum of their durations. Numeric, so
    # that the -x of an old row cancels the +x of a new one exactly: float sums would drift.
    timed = models.BigIntegerField()
    duration = models.DecimalField(max_digits=40, decimal_places=20)

    class Meta:
        indexes = [
            # a run's summary: its rows summed (runs.summaries.live) and compacted
            models.Index(fields=["dag_run_id"], name="taskcount_run"),
        ]

    def __str__(self) -> str:
        return f"{self.dag_run_id} {self.task_id} {self.state}: {self.n:+d}"
