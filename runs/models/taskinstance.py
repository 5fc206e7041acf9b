from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F


class TaskInstanceState(models.TextChoices):
    # "none": created (e.g. by expansion) but its trigger rule has not been evaluated yet.
    NONE = "none", "no status"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry", "up for retry"
    # Waiting in the triggerer for its trigger to fire (BaseOperator.defer, start_from_trigger).
    DEFERRED = "deferred"
    UPSTREAM_FAILED = "upstream_failed", "upstream failed"
    SKIPPED = "skipped"
    REMOVED = "removed"


class ItemChange(models.TextChoices):
    """What a re-expansion found at an index, comparing its item's identity with the one it had."""

    UNCHANGED = "unchanged"
    NEW = "new"
    CHANGED = "changed"


S = TaskInstanceState
FINISHED_STATES = frozenset({S.SUCCESS, S.FAILED, S.UPSTREAM_FAILED, S.SKIPPED, S.REMOVED})
UNFINISHED_STATES = frozenset({S.NONE, S.SCHEDULED, S.QUEUED, S.RUNNING, S.UP_FOR_RETRY, S.DEFERRED})


def path_label(path: list[int] | None) -> str:
    """``[2][5]``: a nested instance's path of indexes as the dashboard and the logs write it."""
    return "".join(f"[{i}]" for i in path or [])


class TaskInstance(models.Model):
    """One run of one task, or of one index of a mapped task (``map_index`` 0..N-1; -1 when unmapped)."""

    # db_index=False: every index below starts with dag_run, and each index is written again on every
    # state change (a state change is never a HOT update), so a redundant one costs on the hot path.
    # db_constraint=False: the foreign key is checked by statement-level triggers instead (migration
    # 0014): PostgreSQL checks a foreign key row by row, a third of an expansion of 100,000.
    dag_run = models.ForeignKey("DagRun", on_delete=models.CASCADE, related_name="task_instances", db_index=False,
                                db_constraint=False)
    task_id = models.CharField(max_length=250)
    map_index = models.IntegerField(default=-1)
    state = models.CharField(max_length=20, choices=TaskInstanceState.choices, default=TaskInstanceState.NONE)
    try_number = models.PositiveIntegerField(default=0)
    max_tries = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    hostname = models.CharField(max_length=250, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    rendered_map_index = models.CharField(max_length=250, null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    # Written by the worker while the try runs; a stale heartbeat means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Resolved arguments and rendered template fields of the current try, for the Details/Rendered tabs.
    rendered_fields = models.JSONField(null=True, blank=True)
    # Which item this index stands for (dagsapp.identity), set when the task expands; null for
    # unmapped instances and items whose identity cannot be known.
    item_identity = models.TextField(null=True, blank=True)
    # Set by a re-expansion only (null after the first one): how this index's item compares.
    item_change = models.CharField(max_length=10, choices=ItemChange.choices, null=True, blank=True)
    # On a -1 placeholder: the next expansion keeps the success of indexes whose item is unchanged
    # ("clear only new, changed and failed"); everything else at those indexes runs again.
    keep_unchanged = models.BooleanField(default=False, db_default=False)
    # Nested mapping only (a task mapped inside a mapped task group): the instance's path of
    # indexes, one per mapping level, outermost first (``fetch [2][5]``); ``map_index`` is then a
    # number unique within the task, given in the order indexes were created. An instance whose
    # path is shorter than the task's levels is a placeholder for everything under that prefix,
    # not expanded yet; it has a map_index below -1.
    map_path = ArrayField(models.IntegerField(), null=True, blank=True)
    # Deferral (runs/deferral.py): the trigger it waits on while deferred, when that wait times
    # out, and what a worker calls when it resumes (next_kwargs holds the event under "event").
    # db_index=False: indexed only where set (ti_trigger, below), so an expansion writes no index entry for it.
    trigger = models.ForeignKey("Trigger", null=True, blank=True, on_delete=models.SET_NULL, related_name="task_instances",
                                db_index=False)
    trigger_timeout = models.DateTimeField(null=True, blank=True)
    next_method = models.CharField(max_length=250, null=True, blank=True)
    next_kwargs = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dag_run", "task_id", "map_index"], name="ti_run_task_index_unique"),
            models.CheckConstraint(condition=models.Q(map_index__gte=-1) | models.Q(map_path__isnull=False),
                                   name="ti_map_index_gte_minus_one_unless_nested"),
            # The scheduler's and the panel's lookups of one prefix of a nested task.
            models.UniqueConstraint(fields=["dag_run", "task_id", "map_path"], name="ti_run_task_path_unique",
                                    condition=models.Q(map_path__isnull=False)),
        ]
        indexes = [
            # grid + scheduler: per-task state aggregation within a run; with duration (longest first,
            # not finished last, as the dashboard's table sorts), that table filtered by state and
            # sorted by duration reads one page of it in order instead of sorting every instance
            models.Index(F("dag_run"), F("task_id"), F("state"), F("duration").desc(nulls_last=True),
                         name="ti_run_task_state_duration"),
            # scheduler: instances still to evaluate, queue or retry; task_id, map_index so that the
            # queue step reads the next ones in order without scanning every instance of the run
            models.Index(fields=["dag_run", "state", "task_id", "map_index"], name="ti_run_unfinished_ordered",
                         condition=models.Q(state__in=["none", "scheduled", "queued", "running", "up_for_retry", "deferred"])),
            # mapped instances table sorted by duration / start
            models.Index(fields=["dag_run", "task_id", "duration"], name="ti_run_task_duration"),
            models.Index(fields=["dag_run", "task_id", "start_date"], name="ti_run_task_start"),
            # a live run's mapped panel: its task's last end, one probe (runs.summaries.mapped_span).
            # Partial: an expansion inserts its instances unended, and this index costs it nothing.
            models.Index(fields=["dag_run", "task_id", "end_date"], name="ti_run_task_end", condition=models.Q(end_date__isnull=False)),
            # what a re-expansion found (unchanged / new / changed): empty until a task re-expands
            models.Index(fields=["dag_run", "task_id", "item_change", "state"], name="ti_run_task_item_change",
                         condition=models.Q(item_change__isnull=False)),
            # a trigger's instances (deleting a trigger sets them to null)
            models.Index(fields=["trigger"], name="ti_trigger", condition=models.Q(trigger__isnull=False)),
            # the timeout sweep: deferred instances whose wait ran out
            models.Index(fields=["trigger_timeout"], name="ti_deferred_timeout", condition=models.Q(state=TaskInstanceState.DEFERRED)),
            # task-instances list across DAGs (runs/web/browse.py): newest started first, of one state or any.
            # Partial: an expansion inserts its instances unstarted, and these indexes cost it nothing.
            models.Index(F("start_date").desc(nulls_last=True), F("id").desc(), name="ti_browse_started",
                         condition=models.Q(start_date__isnull=False)),
            models.Index(F("state"), F("start_date").desc(nulls_last=True), F("id").desc(), name="ti_browse_state",
                         condition=models.Q(start_date__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}[{self.map_index}] ({self.state})"

    @property
    def is_mapped_instance(self) -> bool:
        return self.map_index >= 0

    @property
    def path_label(self) -> str:
        """``[2][5]`` for a nested instance, ``[3]`` for a mapped one, "" for an unmapped one."""
        if self.map_path:
            return path_label(self.map_path)
        return f"[{self.map_index}]" if self.map_index >= 0 else ""


class TaskMap(models.Model):
    """The length (and dict keys) of a task's result that a mapped task expands over."""

    dag_run = models.ForeignKey("DagRun", on_delete=models.CASCADE, related_name="task_maps")
    task_id = models.CharField(max_length=250)
    map_index = models.IntegerField(default=-1)
    length = models.IntegerField()
    keys = models.JSONField(null=True, blank=True)
    # The items' identities, computed by the worker that recorded the result: "" -> a list's item
    # hashes (a dict's keys serve as they are), consumer task_id -> its partial(map_key=...)'s.
    identities = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dag_run", "task_id", "map_index"], name="task_map_unique"),
            models.CheckConstraint(condition=models.Q(length__gte=0), name="task_map_length_gte_zero"),
        ]


class TaskInstanceTry(models.Model):
    """A try of an instance that another try has superseded (a retry, a clear), as it ended; the
    current try is the instance itself. Airflow's task instance history: the API's ``tries``."""

    # db_index=False: the unique (task_instance, try_number) index serves every lookup.
    task_instance = models.ForeignKey("TaskInstance", on_delete=models.CASCADE, related_name="tries", db_index=False)
    try_number = models.PositiveIntegerField()
    state = models.CharField(max_length=20, choices=TaskInstanceState.choices)
    max_tries = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    hostname = models.CharField(max_length=250, blank=True)
    pid = models.IntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task_instance", "try_number"], name="ti_try_unique")]
