"""Read-side queries for the dashboard: aggregated in SQL, so no page loads every task instance."""
from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import CharField, F, Q, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, RowNumber

from dagsapp.serialization import DagData, TaskData, ToleranceUnit, tolerance_units
from runs import summaries
from runs.logs import read_log
from runs.models import (
    DagImportError,
    DagModel,
    DagRun,
    DagRunState,
    ItemChange,
    SerializedDag,
    TaskInstance,
    TaskInstanceState,
    TaskMap,
)
from runs.models.taskinstance import UNFINISHED_STATES, path_label
from runs.sqltext import literal, literals
from runs.tolerance import UnitCounts, unit_counts

S = TaskInstanceState
# Not a TaskInstanceState: a mapped task (or group) whose failures are all tolerated by its
# partial(max_failed_ratio=..., max_failed_count=...). Drawn as success with a marker.
TOLERATED = "tolerated"

# The task-group rule: the first state present wins; "removed" never counts, and success
# shows only when everything that counts succeeded.
STATE_PRIORITY: tuple[str, ...] = (
    S.FAILED, S.UPSTREAM_FAILED, S.UP_FOR_RETRY, S.RUNNING, S.DEFERRED, S.QUEUED, S.SCHEDULED, S.NONE, S.SKIPPED, S.SUCCESS,
)
# The state bar's segments, in the order of Airflow 3's: one list of TaskInstanceState member
# names; a state added to the enum (DEFERRED) takes its place here.
STATE_BAR_ORDER: tuple[str, ...] = tuple(S.__members__[name].value for name in (
    "SUCCESS", "FAILED", "UPSTREAM_FAILED", "UP_FOR_RETRY", "RUNNING", "DEFERRED", "QUEUED", "SCHEDULED", "NONE", "SKIPPED",
    "REMOVED") if name in S.__members__)
ORDER_FIELDS: tuple[str, ...] = ("map_index", "rendered_map_index", "state", "try_number", "start_date", "end_date", "duration")
PER_PAGE = 50


class QueryError(ValueError):
    """A bad filter or sort from the query string; the API answers 400 with its message."""


@dataclass
class Cell:
    """One task (or group) in one run: how many instances are in each state."""

    counts: dict[str, int] = field(default_factory=dict)
    # Count of the -1 placeholder per state: present means "not expanded (yet)" for a mapped task.
    placeholder: dict[str, int] = field(default_factory=dict)
    # Set when every failure of the task (or group) is tolerated: the cell reads as success.
    tolerated: UnitCounts | None = None

    def add(self, other: Cell) -> None:
        for state, n in other.counts.items():
            self.counts[state] = self.counts.get(state, 0) + n

    @property
    def state(self) -> str | None:
        return TOLERATED if self.tolerated is not None else aggregate_state(self.counts)

    @property
    def tooltip(self) -> str:
        if self.tolerated is not None:
            return f"{self.tolerated.describe()} ({state_tooltip(self.counts)})"
        return state_tooltip(self.counts)

    @property
    def tip_counts(self) -> list[tuple[str, int]]:
        """The grid cell's styled tooltip: one line per state, from the counts already aggregated."""
        return sorted_counts(self.counts)

    def unit_counts(self) -> UnitCounts:
        """The counts a mapped task's tolerance is judged on, from this cell alone (no query)."""
        placeholders = sum(self.placeholder.values())
        indexes = {s: n - self.placeholder.get(s, 0) for s, n in self.counts.items()}
        return UnitCounts(total=sum(n for s, n in indexes.items() if s != S.REMOVED),
                          failed=indexes.get(S.FAILED, 0) + indexes.get(S.UPSTREAM_FAILED, 0),
                          succeeded=indexes.get(S.SUCCESS, 0),
                          unfinished=sum(n for s, n in self.counts.items() if s in UNFINISHED_STATES),
                          placeholders=placeholders)

    @property
    def mapped_count(self) -> int | None:
        """N for the `task [N]` label; None while only the unexpanded placeholder exists."""
        if self.placeholder.get(S.NONE) or self.placeholder.get(S.FAILED):
            return None
        return sum(n for s, n in self.counts.items() if s != S.REMOVED) - sum(self.placeholder.values())


def aggregate_state(counts: dict[str, int]) -> str | None:
    for state in STATE_PRIORITY:
        if counts.get(state):
            return state
    return None


def sorted_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """(state, count) of the states present, most frequent first, ties in priority order."""
    order = {s: i for i, s in enumerate((*STATE_PRIORITY, S.REMOVED))}
    return sorted(((s, n) for s, n in counts.items() if n), key=lambda sn: (-sn[1], order.get(sn[0], 99)))


def state_tooltip(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {'no status' if s == S.NONE else s.replace('_', ' ')}" for s, n in sorted_counts(counts))


@dataclass(frozen=True)
class Segment:
    state: str
    count: int
    percent: float


def state_segments(counts: Mapping[str, int]) -> list[Segment]:
    """One segment per state present, as wide as its share, in STATE_BAR_ORDER (any other state last)."""
    total = sum(counts.values())
    order = [*STATE_BAR_ORDER, *sorted(s for s in counts if s not in STATE_BAR_ORDER)]
    return [Segment(s, counts[s], round(100 * counts[s] / total, 3)) for s in order if counts.get(s)]


def latest_runs(dag_id: str, num_runs: int, *, state: str | None = None, run_type: str | None = None) -> list[DagRun]:
    """The DAG's latest runs, oldest first (the grid's columns), of a run state and type if given.
    Serves from index dag_run_latest."""
    qs = DagRun.objects.filter(dag_id=dag_id)
    if state:
        qs = qs.filter(state=state)
    if run_type:
        qs = qs.filter(run_type=run_type)
    runs = list(qs.order_by("-logical_date", "-id")[:num_runs])
    runs.reverse()
    return runs


def grid_cells(runs: Iterable[DagRun]) -> dict[tuple[int, str], Cell]:
    """(dag_run_id, task_id) -> Cell. Finished runs read their frozen summary; the active ones
    their live counts (runs.models.TaskCount), whatever the number of instances."""
    cells: dict[tuple[int, str], Cell] = defaultdict(Cell)
    for run_id, rows in summaries.run_summaries(runs).items():
        for task_id, state, n, placeholder, *_timings in rows:
            cell = cells[(run_id, task_id)]
            cell.counts[state] = n
            if placeholder:
                cell.placeholder[state] = placeholder
    return cells


def tolerated_cells(data: DagData, runs: list[DagRun], cells: Mapping[tuple[int, str], Cell]) -> dict[tuple[int, str], UnitCounts]:
    """(run, task or group id) -> counts, for the cells whose failures are all tolerated.

    A mapped task is judged from its own cell (no query). A mapped group's indexes are counted in
    SQL (an index failed if any of its tasks did), one query per tolerant group, and only over
    the runs where the group's cells show a failure and nothing unfinished. The tolerance read is
    the one of ``data`` (the Grid draws every run with the DAG's latest version).
    """
    out: dict[tuple[int, str], UnitCounts] = {}
    groups: dict[str, ToleranceUnit] = {}
    for task_id, unit in tolerance_units(data).items():
        if unit["unit"] != task_id:
            groups[unit["unit"]] = unit
            continue
        for run in runs:
            counts = cells.get((run.pk, task_id), Cell()).unit_counts()
            if counts.verdict(unit) == "tolerated":
                out[(run.pk, task_id)] = counts
    for group_id, unit in groups.items():
        task_ids = unit["task_ids"]
        candidates = []
        for run in runs:
            merged = Cell()
            for task_id in task_ids:
                merged.add(cells.get((run.pk, task_id), Cell()))
            if (merged.counts.get(S.FAILED) or merged.counts.get(S.UPSTREAM_FAILED)) and not any(
                    merged.counts.get(s) for s in UNFINISHED_STATES):
                candidates.append(run.pk)
        for run_pk, counts in unit_counts(candidates, unit).items():
            if counts.verdict(unit) == "tolerated":
                out[(run_pk, group_id)] = counts
                out.update({(run_pk, task_id): counts for task_id in task_ids})
    return out


def tolerated_summary(run: DagRun, task_id: str) -> UnitCounts | None:
    """The task's (or its mapped group's) counts when all its failures are tolerated in this run,
    judged by the run's own DAG version; one query, only for a task under a tolerance."""
    unit = tolerance_units(run.serialized_dag.dag_data()).get(task_id)
    if unit is None:
        return None
    counts = unit_counts([run.pk], unit).get(run.pk)
    return counts if counts is not None and counts.verdict(unit) == "tolerated" else None


def runs_token(dag_id: str | None) -> str | None:
    """Changes when a run is added or one starts or ends (of one DAG, or of any): what an open page
    polls for; None for a DAG that does not exist. One statement, served by the primary keys and
    the partial index dag_run_active."""
    where = "WHERE dag_id = %(dag)s" if dag_id is not None else ""
    active = "AND dag_id = %(dag)s" if dag_id is not None else ""
    exists = "EXISTS (SELECT 1 FROM runs_dagmodel WHERE dag_id = %(dag)s)" if dag_id is not None else "true"
    with connection.cursor() as cur:
        cur.execute(f"SELECT (SELECT max(id) FROM runs_dagrun {where}),"
                    f" (SELECT count(*) FROM runs_dagrun WHERE state IN ({literals(DagRunState.QUEUED, DagRunState.RUNNING)}) {active}),"
                    f" {exists}", {"dag": dag_id})
        row = cur.fetchone()
    if row is None or not row[2]:
        return None
    return f"{row[0] or 0}-{row[1]}"


def last_runs_by_dag(dag_ids: list[str], per_dag: int) -> dict[str, list[DagRun]]:
    """The latest ``per_dag`` runs of each DAG (oldest first), in one query with a window function."""
    rn = Window(RowNumber(), partition_by=[F("dag_id")], order_by=[F("logical_date").desc(), F("id").desc()])
    rows = (DagRun.objects.filter(dag_id__in=dag_ids).annotate(rn=rn).filter(rn__lte=per_dag)
            .only("dag_id", "run_id", "state", "logical_date").order_by("dag_id", "logical_date", "id"))
    out: dict[str, list[DagRun]] = defaultdict(list)
    for run in rows:
        out[run.dag_id].append(run)
    return out


@dataclass
class MappedSummary:
    counts: dict[str, int]
    first_start: datetime | None
    last_end: datetime | None
    total_duration: float | None
    tolerated: UnitCounts | None = None
    # The -1 placeholder's state while it exists: waiting (none), or how an expansion that did not
    # happen ended (failed, skipped, upstream_failed).
    placeholder_state: str | None = None

    @property
    def total(self) -> int:
        return sum(n for s, n in self.counts.items() if s != S.REMOVED)

    @property
    def done(self) -> int:
        finished = (S.SUCCESS, S.FAILED, S.UPSTREAM_FAILED, S.SKIPPED)
        return sum(self.counts.get(s, 0) for s in finished)

    @property
    def percent_done(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def state(self) -> str | None:
        if self.tolerated is not None:
            return TOLERATED
        if not self.total and self.placeholder_state is not None:
            return self.placeholder_state
        return aggregate_state(self.counts)

    @property
    def segments(self) -> list[Segment]:
        return state_segments(self.counts)

    @property
    def reexpanding(self) -> bool:
        """Cleared and waiting to expand again: the old indexes are still there."""
        return self.placeholder_state == S.NONE and self.total > 0

    @property
    def tooltip(self) -> str:
        return state_tooltip(self.counts)

    @property
    def span(self) -> float | None:
        if self.first_start is None or self.last_end is None:
            return None
        return max(0.0, (self.last_end - self.first_start).total_seconds())


def mapped_summary(run: DagRun, task_id: str) -> MappedSummary:
    """Counts per state and the timings of a mapped task's instances (frozen for a finished run)."""
    counts: dict[str, int] = {}
    firsts, lasts, totals = [], [], []
    placeholder_state = None
    for row_task, state, n, placeholder, first, last, total, *_ in summaries.run_summaries([run]).get(run.pk, []):
        if row_task != task_id:
            continue
        if placeholder:
            placeholder_state = state
        if n - placeholder == 0:
            continue
        counts[state] = n - placeholder
        if state == S.REMOVED:
            continue
        firsts += [datetime.fromisoformat(first)] if first else []
        lasts += [datetime.fromisoformat(last)] if last else []
        totals += [total] if total is not None else []
    first_start, last_end = min(firsts, default=None), max(lasts, default=None)
    if run.state_summary is None and run.state not in summaries.FINISHED_RUN_STATES and counts:
        # A live run's counts carry no timings (min and max are not deltas): two index probes.
        first_start, last_end = summaries.mapped_span(run.pk, task_id)
    return MappedSummary(counts=counts, first_start=first_start, last_end=last_end,
                         total_duration=sum(totals) if totals else None, placeholder_state=placeholder_state)


@dataclass(frozen=True)
class ExpansionOutcome:
    """Why a mapped task has no instances: its expansion failed, was skipped or its upstream failed."""

    state: str
    reason: str


# A log line: "[2024-01-01 10:00:00] ERROR - the message".
_LOG_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)?[A-Z]+ - ")
_NO_LOG_REASON: dict[str, str] = {
    S.SKIPPED: "Its input had no items: there was nothing to map over.",
    S.UPSTREAM_FAILED: "An upstream task failed, so there was nothing to map over.",
    S.FAILED: "The expansion failed.",
}


def expansion_outcome(run: DagRun, task_id: str, placeholder_state: str | None) -> ExpansionOutcome | None:
    """The reason in the placeholder's log (the scheduler writes it there), last line first; one
    query for the instance and one for its log, only when the expansion ended without instances."""
    if placeholder_state not in _NO_LOG_REASON:
        return None
    ti = find_task_instance(run, task_id, -1)
    if ti is None or ti.state not in _NO_LOG_REASON:
        return None
    text, _ = read_log(ti.pk, ti.try_number) if ti.try_number else ("", -1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = _LOG_PREFIX.sub("", lines[-1]) if lines else _NO_LOG_REASON[ti.state]
    return ExpansionOutcome(state=ti.state, reason=reason)


@dataclass(frozen=True)
class RunSummary:
    """A run's instances counted by state, and by task for what a clear of the run would touch."""

    counts: dict[str, int]
    by_task: dict[str, dict[str, int]]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(n for s, n in self.counts.items() if s not in UNFINISHED_STATES)

    @property
    def segments(self) -> list[Segment]:
        return state_segments(self.counts)

    @property
    def tooltip(self) -> str:
        return state_tooltip(self.counts)


def run_summary(run: DagRun) -> RunSummary:
    """From the run's frozen summary, or its live counts: never grows with its instances. A
    mapped task's placeholder counts while it stands for the task (not expanded, or not expandable)."""
    counts: dict[str, int] = defaultdict(int)
    by_task: dict[str, dict[str, int]] = defaultdict(dict)
    for task_id, state, n, *_rest in summaries.run_summaries([run]).get(run.pk, []):
        counts[state] += n
        by_task[task_id][state] = n
    return RunSummary(counts=dict(counts), by_task=dict(by_task))


def dag_version_number(run: DagRun) -> int:
    """Which version of its DAG the run was created with: 1 for the first one parsed."""
    return SerializedDag.objects.filter(dag_id=run.dag_id, created_at__lte=run.serialized_dag.created_at).count()


@dataclass(frozen=True)
class ItemChanges:
    """What the last re-expansion of a mapped task found, index by index (dagsapp.identity)."""

    unchanged: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0

    @property
    def reexpanded(self) -> bool:
        return bool(self.unchanged or self.new or self.changed)

    def __str__(self) -> str:
        return f"{self.unchanged} unchanged, {self.new} new, {self.changed} changed, {self.removed} removed"


def item_changes(run: DagRun, task_id: str) -> ItemChanges:
    """One statement whose cost follows the re-expanded and removed instances, not all of them:
    item_change is set only by a re-expansion (the partial index ti_run_task_item_change holds
    those rows alone), and removed instances are read from the (run, task, state) index."""
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT (SELECT coalesce(json_object_agg(item_change, n), '{{}}') FROM (
                        SELECT item_change, count(*) AS n FROM runs_taskinstance
                        WHERE dag_run_id = %(run)s AND task_id = %(task)s AND item_change IS NOT NULL AND map_index >= 0
                          AND state <> {literal(S.REMOVED)} GROUP BY item_change) AS c),
                   (SELECT count(*) FROM runs_taskinstance
                    WHERE dag_run_id = %(run)s AND task_id = %(task)s AND state = {literal(S.REMOVED)} AND map_index >= 0)
            """,
            {"run": run.pk, "task": task_id})
        row = cur.fetchone()
    assert row is not None
    by_change, removed = row
    if isinstance(by_change, str):
        by_change = json.loads(by_change)
    return ItemChanges(unchanged=by_change.get(ItemChange.UNCHANGED, 0), new=by_change.get(ItemChange.NEW, 0),
                       changed=by_change.get(ItemChange.CHANGED, 0), removed=removed)


SUGGESTIONS = 10


def instance_suggestions(run: DagRun, task_id: str, text: str, *, limit: int = SUGGESTIONS,
                         nested: bool = False) -> list[tuple[int, str | None]]:
    """Instances for the picker as the user types: indexes that start with the digits typed (the
    exact one first), else names or keys that contain the text. One query, ``limit`` rows. A
    nested instance is labelled by its path: "[1][2] beta/page-2"."""
    qs = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index__gte=0)
    text = text.strip()[:250]
    if not text:
        qs = qs.order_by("map_index")
    elif parse_map_index(text) is not None:
        qs = qs.annotate(index_text=Cast("map_index", CharField())).filter(index_text__startswith=text).order_by("map_index")
    else:
        qs = qs.filter(Q(rendered_map_index__icontains=text) | Q(item_identity__iexact=text)).order_by("map_index")
    if nested:
        qs = qs.order_by("map_path", "map_index")
    rows = qs.values_list("map_index", "map_path", "rendered_map_index")[:limit]
    return [(mi, " ".join(filter(None, [path_label(path), name])) if path else name) for mi, path, name in rows]


def resolve_pick(run: DagRun, task_id: str, text: str) -> int | None:
    """The instance a user typed into the picker: its map index, else the first whose name (or
    dict key) is the text, else the first whose name contains it."""
    text = text.strip()[:250]
    index = parse_map_index(text.split(":", 1)[0].strip())
    qs = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index__gte=0).order_by("map_index")
    if index is not None:
        return qs.filter(map_index=index).values_list("map_index", flat=True).first()
    if not text:
        return None
    exact = qs.filter(Q(rendered_map_index__iexact=text) | Q(item_identity__iexact=text)).values_list("map_index", flat=True).first()
    return exact if exact is not None else qs.filter(rendered_map_index__icontains=text).values_list("map_index", flat=True).first()


_MAP_INDEX = re.compile(r"[0-9]{1,9}")


def parse_map_index(raw: str) -> int | None:
    """A map index typed by a user, or None. ASCII digits only: ``str.isdigit()`` is also true
    of '²' and other digits ``int()`` refuses; at most 9 of them, as the URLs allow."""
    return int(raw) if _MAP_INDEX.fullmatch(raw) else None


def parse_order_by(raw: str | None) -> str:
    value = raw or "map_index"
    if value.removeprefix("-") not in ORDER_FIELDS:
        raise QueryError(f"order_by must be one of {', '.join(ORDER_FIELDS)} (with '-' for descending), not {value!r}")
    return value


def parse_state(raw: str | None) -> str | None:
    if not raw:
        return None
    if raw not in S.values:
        raise QueryError(f"state must be one of {', '.join(S.values)}, not {raw!r}")
    return raw


def parse_page(raw: str | None) -> int:
    if not raw:
        return 1
    try:
        page = int(raw)
    except ValueError:
        raise QueryError(f"page must be a positive integer, not {raw!r}") from None
    if page < 1:
        raise QueryError(f"page must be a positive integer, not {raw!r}")
    return page


@dataclass
class InstancePage:
    total: int
    page: int
    pages: int
    instances: list[TaskInstance]
    order_by: str
    state: str | None
    q: str

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def page_numbers(self, *, around: int = 2) -> list[int | None]:
        """The pager's numbers: the first, the last and ``around`` each side of this page; None for a gap."""
        wanted = sorted({1, self.pages, *range(max(1, self.page - around), min(self.pages, self.page + around) + 1)})
        out: list[int | None] = []
        for n in wanted:
            if out and n - (out[-1] or 0) > 1:
                out.append(n - 1 if n - (out[-1] or 0) == 2 else None)
            out.append(n)
        return out

TABLE_FIELDS = ("id", "map_index", "map_path", "rendered_map_index", "state", "try_number", "max_tries", "start_date", "end_date",
                "duration", "item_identity", "item_change")
# The start of an instance's resolved mapped arguments (JSON), for a name when it has none.
KWARGS_PREVIEW_CHARS = 200
_KWARGS_PREVIEW = RawSQL(f"left((rendered_fields -> 'mapped_kwargs')::text, {KWARGS_PREVIEW_CHARS})", ())


def mapped_instances_page(run: DagRun, task_id: str, *, state: str | None = None, q: str = "", order_by: str = "map_index",
                          page: int = 1, per_page: int = PER_PAGE, nested: bool = False, outer: int | None = None) -> InstancePage:
    """One page of a mapped task's instances: a count query and a page query, both on indexes.

    ``nested``: the task is mapped inside a mapped group; "by index" means by path of indexes,
    and ``outer`` keeps one outer index."""
    qs = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index__gte=0)
    if outer is not None:
        qs = qs.filter(map_path__0=outer)
    if nested and order_by.removeprefix("-") == "map_index":
        order_by = order_by.replace("map_index", "map_path")
    if state:
        qs = qs.filter(state=state)
    if q:
        index = parse_map_index(q)
        qs = qs.filter(Q(rendered_map_index__icontains=q) | (Q(map_index=index) if index is not None else Q(pk__in=[])))
    total = mapped_count(run, task_id, None if state is None else [state]) if not q and outer is None else None
    if total is None:
        total = qs.count()
    pages = max(1, math.ceil(total / per_page))
    page = min(page, pages)
    name = order_by.removeprefix("-")
    desc = order_by.startswith("-")
    # Not started (null) last either way; "-duration" with a state reads the page from
    # ti_run_task_state_duration (duration DESC NULLS LAST) and stops, instead of sorting every instance.
    key = F(name).desc(nulls_last=True) if desc else F(name).asc(nulls_last=True)
    tiebreak = "-map_index" if desc else "map_index"
    start = (page - 1) * per_page
    rows = qs.only(*TABLE_FIELDS).annotate(kwargs_preview=_KWARGS_PREVIEW).order_by(key, tiebreak)
    instances: list[TaskInstance] = list(rows[start : start + per_page]) if total else []
    return InstancePage(total=total, page=page, pages=pages, instances=instances, order_by=order_by.replace("map_path", "map_index"),
                        state=state, q=q)


def mapped_count(run: DagRun, task_id: str, states: Iterable[str] | None = None) -> int:
    """A mapped task's instances (of these states, or all) as the run's frozen summary or its live
    counts have them, without reading the instances."""
    rows = run.state_summary if run.state_summary is not None else summaries.live([run.pk]).get(run.pk, [])
    wanted = None if states is None else set(states)
    return sum(int(n) - int(placeholders) for t, s, n, placeholders, *_ in rows
               if t == task_id and (wanted is None or s in wanted))


@dataclass(frozen=True)
class OuterIndex:
    """A nested task's instances under one outer index (``fetch [2]``): counts by state."""

    index: int
    counts: dict[str, int]
    # Not expanded there yet, or its expansion ended (skipped over an empty list, failed).
    placeholder: str | None

    @property
    def total(self) -> int:
        return sum(n for s, n in self.counts.items() if s != S.REMOVED)

    @property
    def state(self) -> str | None:
        return aggregate_state(self.counts) or self.placeholder


MAX_OUTER_INDEXES = 200


def outer_indexes(run: DagRun, task_id: str, *, limit: int = MAX_OUTER_INDEXES) -> list[OuterIndex]:
    """A nested task's first ``limit`` outer indexes with their counts: one grouped query."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT map_path[1], state, map_index < 0, count(*) FROM runs_taskinstance"
            " WHERE dag_run_id = %s AND task_id = %s AND cardinality(map_path) > 0 AND map_path[1] < %s"
            " GROUP BY 1, 2, 3 ORDER BY 1",
            [run.pk, task_id, limit])
        rows = cur.fetchall()
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    placeholders: dict[int, str] = {}
    for outer, state, is_placeholder, n in rows:
        if is_placeholder:
            placeholders[outer] = state
        else:
            counts[outer][state] = n
    return [OuterIndex(i, counts.get(i, {}), placeholders.get(i)) for i in sorted({*counts, *placeholders})]


def keys_name_items(run: DagRun, task: TaskData) -> bool:
    """Whether an instance's item identity names it: the key of a dict the task is mapped over
    (``load [orders]``, as the AIP has it) or its ``partial(map_key=...)``; a list item's identity
    is a hash. At most one query, for a task mapped over one upstream's result."""
    mapping = task["mapping"]
    if mapping is None:
        return False
    if task.get("map_key"):
        return True
    spec = mapping["input"]
    if spec["type"] != "dict_of_lists" or len(spec["args"]) != 1:
        return False
    (source,) = spec["args"].values()
    if source["t"] == "literal":
        return "pairs" in source
    if source["t"] == "xcom":
        return TaskMap.objects.filter(dag_run=run, task_id=source["task_id"], keys__isnull=False).exists()
    return False


NAME_CHARS = 60


def instance_name(ti: TaskInstance, *, keyed: bool) -> tuple[str, str]:
    """(name, where it comes from) for the Name column: the rendered name, else the dict key (or
    map_key), else a short repr of the item's resolved arguments once it ran; ("", "") if none yet."""
    if ti.rendered_map_index:
        return ti.rendered_map_index, "rendered"
    if keyed and ti.item_identity:
        return ti.item_identity, "key"
    preview: str | None = getattr(ti, "kwargs_preview", None)
    if not preview:
        return "", ""
    try:
        kwargs = json.loads(preview)
    except ValueError:  # cut at KWARGS_PREVIEW_CHARS
        return preview[:NAME_CHARS] + "…", "item"
    text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in kwargs.items()) if isinstance(kwargs, dict) else preview
    return (text if len(text) <= NAME_CHARS else text[: NAME_CHARS - 1] + "…"), "item"


def instance_json(ti: TaskInstance) -> dict[str, Any]:
    return {
        "map_index": ti.map_index,
        "rendered_map_index": ti.rendered_map_index,
        "state": ti.state,
        "try_number": ti.try_number,
        "start_date": ti.start_date.isoformat() if ti.start_date else None,
        "end_date": ti.end_date.isoformat() if ti.end_date else None,
        "duration": ti.duration,
        # Nested mapping: the path of indexes (null for a task mapped one level deep).
        "map_path": ti.map_path,
        # Which item the index stands for, and what its last re-expansion found (dagsapp.identity).
        "item_identity": ti.item_identity,
        "item_change": ti.item_change,
    }


def neighbour_indexes(run: DagRun, task_id: str, map_index: int) -> tuple[int | None, int | None]:
    """The previous and next existing indexes around ``map_index`` (two indexed lookups)."""
    if map_index < 0:
        return None, None
    qs = TaskInstance.objects.filter(dag_run=run, task_id=task_id)
    prev = qs.filter(map_index__gte=0, map_index__lt=map_index).order_by("-map_index").values_list("map_index", flat=True).first()
    nxt = qs.filter(map_index__gt=map_index).order_by("map_index").values_list("map_index", flat=True).first()
    return prev, nxt


def find_dag(dag_id: str) -> DagModel | None:
    """The DAG with its latest parsed version (None when it was never parsed)."""
    return DagModel.objects.select_related("latest_serialized").filter(dag_id=dag_id).first()


def find_dag_run(dag_id: str, run_id: str) -> DagRun | None:
    """The run with the version of the DAG it was created with (unique constraint on dag_id, run_id)."""
    return DagRun.objects.select_related("serialized_dag").filter(dag_id=dag_id, run_id=run_id).first()


def latest_run(dag_id: str) -> DagRun | None:
    return DagRun.objects.select_related("serialized_dag").filter(dag_id=dag_id).order_by("-logical_date").first()


def find_task_instance(run: DagRun, task_id: str, map_index: int) -> TaskInstance | None:
    """One instance (unique index ti_run_task_index); its ``dag_run`` is the run given, not loaded again."""
    ti = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index=map_index).first()
    if ti is not None:
        ti.dag_run = run
    return ti


def active_dags() -> list[DagModel]:
    return list(DagModel.objects.filter(is_active=True).select_related("latest_serialized").order_by("dag_id"))


def import_errors() -> list[DagImportError]:
    return list(DagImportError.objects.all())


def run_choices(dag_id: str, limit: int) -> list[Mapping[str, Any]]:
    """The latest runs' ids and states, newest first, for a run picker."""
    return list(DagRun.objects.filter(dag_id=dag_id).order_by("-logical_date").values("run_id", "state")[:limit])


def instance_xcoms(ti: TaskInstance, *, max_chars: int) -> list[dict[str, Any]]:
    """The instance's XComs for display: whole when small; else only the first ``max_chars``
    characters of the JSON are read from the database (a 50 MB value never reaches the page).
    A value the try stored a masked copy of (it contained secrets the try knew) shows that copy."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT key, length(v::text), CASE WHEN length(v::text) <= %(max)s THEN v::text END, left(v::text, %(max)s)"
            " FROM (SELECT key, COALESCE(display, value) AS v FROM runs_xcom"
            "       WHERE dag_run_id = %(run)s AND task_id = %(task)s AND map_index = %(index)s) AS x ORDER BY key",
            {"max": max_chars, "run": ti.dag_run_id, "task": ti.task_id, "index": ti.map_index},
        )
        rows = cur.fetchall()
    return [{"key": key, "size": size, "truncated": whole is None, "preview": preview,
             "value": json.loads(whole) if whole is not None else None} for key, size, whole, preview in rows]


def xcom_json(ti: TaskInstance, key: str) -> str | None:
    """One XCom's whole value as JSON text (the download of a value too large to show), masked as shown."""
    with connection.cursor() as cur:
        cur.execute("SELECT COALESCE(display, value)::text FROM runs_xcom WHERE dag_run_id = %s AND task_id = %s AND map_index = %s AND key = %s",
                    [ti.dag_run_id, ti.task_id, ti.map_index, key])
        row = cur.fetchone()
    return row[0] if row else None


def in_group(user: AbstractBaseUser | AnonymousUser, group: str) -> bool:
    groups = getattr(user, "groups", None)
    return groups is not None and groups.filter(name=group).exists()


def reload_dag_run(run: DagRun) -> None:
    """The run's state as an action left it (clearing reopens a finished run)."""
    run.refresh_from_db()
