"""Browsing across DAGs: the DAG list's search and filters, and the runs and task instances of every DAG.

Each list is one page of rows and one count capped at ``MAX_COUNT`` (counting a million failed
instances exactly would cost more than the page), whatever the filters; the filters the pages
offer are served by indexes (migration 0016_browse_indexes): runs and instances newest first by start date,
optionally of one state.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Generic, TypeVar

from django.db import connection
from django.db.models import F, Model, OuterRef, QuerySet, Subquery
from django.utils import timezone

from runs.models import DagModel, DagRun, TaskInstance, TaskInstanceState

PAGE_SIZE = 50
# Task-instance states that have no start date yet.
WAITING_STATES = frozenset({TaskInstanceState.NONE, TaskInstanceState.SCHEDULED, TaskInstanceState.QUEUED})
DAG_PAGE_SIZE = 25
MAX_COUNT = 10_000
T = TypeVar("T")
M = TypeVar("M", bound=Model)


@dataclass
class Page(Generic[T]):
    rows: list[T]
    number: int
    size: int
    count: int  # capped at MAX_COUNT + 1

    @property
    def count_capped(self) -> bool:
        return self.count > MAX_COUNT

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.count, MAX_COUNT) // self.size))

    @property
    def has_next(self) -> bool:
        return self.number * self.size < self.count

    @property
    def first_row(self) -> int:
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        return (self.number - 1) * self.size + len(self.rows)


def paginate(qs: QuerySet[M], number: int, size: int) -> Page[M]:
    """Offset paging with a bounded count; a page past the end shows the last one."""
    count = qs.order_by()[:MAX_COUNT + 1].count()
    last = max(1, -(-min(count, MAX_COUNT) // size))
    number = min(max(number, 1), last)
    return Page(list(qs[(number - 1) * size:number * size]), number, size, count)


@dataclass(frozen=True)
class DateRange:
    """Days in the active time zone, both ends included (``start`` or ``end`` may be open)."""

    start: date | None = None
    end: date | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        zone = timezone.get_current_timezone()
        low = datetime.combine(self.start, time.min, zone) if self.start else None
        high = datetime.combine(self.end + timedelta(days=1), time.min, zone) if self.end else None
        return low, high


def parse_day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Filters:
    state: str = ""
    dag_id: str = ""
    days: DateRange = field(default_factory=DateRange)


def _dated(qs: QuerySet[M], column: str, days: DateRange) -> QuerySet[M]:
    low, high = days.bounds()
    if low is not None:
        qs = qs.filter(**{f"{column}__gte": low})
    if high is not None:
        qs = qs.filter(**{f"{column}__lt": high})
    return qs


def runs_page(filters: Filters, page: int) -> Page[DagRun]:
    """Runs of every DAG, the latest started first (not started yet last), one page."""
    qs = DagRun.objects.defer("conf", "state_summary")
    if filters.state:
        qs = qs.filter(state=filters.state)
    if filters.dag_id:
        qs = qs.filter(dag_id=filters.dag_id)
    qs = _dated(qs, "start_date", filters.days).order_by(F("start_date").desc(nulls_last=True), "-id")
    found = paginate(qs, page, PAGE_SIZE)
    for run in found.rows:
        run.duration_s = (run.end_date - run.start_date).total_seconds() if run.start_date and run.end_date else None  # type: ignore[attr-defined]
    return found


def task_instances_page(filters: Filters, page: int) -> Page[TaskInstance]:
    """Task instances of every DAG that have started, the latest first, one page, with their runs; or those
    waiting (none, scheduled, queued), the newest first."""
    qs = (TaskInstance.objects.select_related("dag_run")
          .only("task_id", "map_index", "map_path", "state", "try_number", "max_tries", "start_date", "end_date", "duration",
                "rendered_map_index", "dag_run__dag_id", "dag_run__run_id", "dag_run__logical_date"))
    if filters.state:
        qs = qs.filter(state=filters.state)
    if filters.dag_id:
        qs = qs.filter(dag_run__dag_id=filters.dag_id)
    if filters.state in WAITING_STATES:
        # Never started: the newest created first; the days (of a start) do not apply to them.
        return paginate(qs.order_by("-id"), page, PAGE_SIZE)
    # Every other state has a start date (skipped and upstream_failed are given one when set), so the
    # list is of started instances, by the partial indexes an expansion's inserts do not pay for.
    qs = _dated(qs.filter(start_date__isnull=False), "start_date", filters.days)
    return paginate(qs.order_by(F("start_date").desc(nulls_last=True), "-id"), page, PAGE_SIZE)


def dag_ids() -> list[str]:
    return list(DagModel.objects.filter(is_active=True).order_by("dag_id").values_list("dag_id", flat=True))


def dags_page(*, q: str, tag: str, last_state: str, page: int) -> Page[DagModel]:
    """Active DAGs by id, searched by id (case-insensitive substring), by tag and by their last run's state."""
    qs = DagModel.objects.filter(is_active=True).select_related("latest_serialized")
    if last_state:
        # The latest run per DAG by the grid's index (dag_id, -logical_date), only when filtered by it.
        last_run = DagRun.objects.filter(dag_id=OuterRef("dag_id")).order_by("-logical_date", "-id").values("state")[:1]
        qs = qs.annotate(last_state=Subquery(last_run))
    if q:
        qs = qs.filter(dag_id__icontains=q)
    if tag:
        qs = qs.filter(latest_serialized__data__tags__contains=[tag])
    if last_state == "none":
        qs = qs.filter(last_state__isnull=True)  # type: ignore[misc]  # the annotation above
    elif last_state:
        qs = qs.filter(last_state=last_state)  # type: ignore[misc]
    return paginate(qs.order_by("dag_id"), page, DAG_PAGE_SIZE)


def all_tags() -> Sequence[str]:
    """Every tag of an active DAG's latest version, for the tag filter (one query)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT tag FROM runs_dagmodel d JOIN runs_serializeddag s ON s.id = d.latest_serialized_id,"
            " jsonb_array_elements_text(COALESCE(s.data -> 'tags', '[]'::jsonb)) AS tag WHERE d.is_active ORDER BY tag")
        return [row[0] for row in cur.fetchall()]
