"""Scheduler steps. Each does one thing for one DagRun and returns whether it did any work.

Concurrency: a pass over a DagRun holds that run's row lock (SELECT ... FOR NO KEY UPDATE SKIP LOCKED),
so two schedulers never work on one run at once; task instance changes are compare-and-swap
updates on the old state, and the unique (dag_run, task_id, map_index) constraint makes a
duplicate expansion impossible even if that lock were bypassed.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from dagsapp.exceptions import MappingError
from dagsapp.expandinput import expand_input_length
from dagsapp.identity import expansion_identities
from dagsapp.serialization import DagData, TaskData, ToleranceUnit, input_sources, tolerance_units
from runs import history, metrics, summaries
from runs.logs import log_line
from runs.models import DagModel, DagRun, DagRunState, DagRunType, ItemChange, TaskInstance, TaskInstanceState, TaskMap, XCom
from runs.models.taskinstance import FINISHED_STATES, UNFINISHED_STATES
from runs.resolver import DbResolver
from runs.scheduling import nested
from runs.scheduling.executors import Executor
from runs.scheduling.instance_names import name_mapped_instances
from runs.scheduling.start_from_trigger import start_from_triggers
from runs.scheduling.trigger_rules import UpstreamCounts, evaluate
from runs.sqltext import literal, literals
from runs.tolerance import unit_counts

log = logging.getLogger(__name__)
S = TaskInstanceState
QUEUE_BATCH = 2000


def map_length_limit(task: TaskData) -> int:
    return int(task["max_map_length"] or settings.MAX_MAP_LENGTH)


def fail_placeholder(*, dag_run: DagRun, task_id: str, reason: str) -> bool:
    """An expansion that cannot happen fails the task's -1 instance, with the reason in its log."""
    ti = TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index=-1, state=S.NONE).first()
    if ti is None:
        return False
    now = timezone.now()
    updated = TaskInstance.objects.filter(pk=ti.pk, state=S.NONE).update(
        state=S.FAILED, try_number=F("try_number") + 1, start_date=now, end_date=now, duration=0)
    if updated:
        log_line(ti.pk, ti.try_number + 1, f"ERROR - Cannot expand mapped task {task_id!r}: {reason}")
    return bool(updated)


def expand_mapped_task(*, dag_run: DagRun, data: DagData, task_id: str) -> int:
    """Turn the -1 placeholder into indexes 0..N-1 once N is known; returns N created (0 if not ready).

    Also re-expands after a clear: indexes that exist are reused (their try history kept), new
    ones are created, and indexes past the new length are marked removed. Each instance records
    its item's identity (dagsapp.identity); a re-expansion marks each index unchanged, changed or
    new, and a placeholder left by "clear only new, changed and failed" (``keep_unchanged``) keeps
    the success of unchanged indexes.
    """
    task = data["tasks"][task_id]
    mapping = task["mapping"]
    assert mapping is not None, f"{task_id!r} is not a mapped task"
    placeholder = TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index=-1, state=S.NONE).first()
    if placeholder is None:
        return 0
    # As Airflow does, a task expands only once its trigger rule lets it run: an upstream that
    # fails first leaves one upstream_failed placeholder (schedule_task_instances sets it), not
    # one upstream_failed instance per item.
    # The tasks it maps over too: inside a mapped task group they need not be direct upstreams.
    sources = [src["task_id"] for src in input_sources(mapping["input"])]
    counts = _counts_by_task(dag_run, task_ids=[*task["upstream"], *sources])
    seen = seen_by_downstream(dag_run=dag_run, data=data, counts=counts)
    if evaluate(task["trigger_rule"], _shared_upstream_counts(task, seen)) != "run":
        return 0
    try:
        length = expand_input_length(mapping["input"], DbResolver(dag_run, data))
    except MappingError as exc:
        fail_placeholder(dag_run=dag_run, task_id=task_id, reason=str(exc))
        return 0
    if length is None:
        _end_placeholder_without_input(dag_run=dag_run, task=task, counts=counts, placeholder=placeholder)
        return 0
    limit = map_length_limit(task)
    if length > limit:
        fail_placeholder(dag_run=dag_run, task_id=task_id, reason=(
            f"its input has {length} items, more than the limit of {limit} "
            "(raise it with partial(max_map_length=...) or the MAX_MAP_LENGTH setting)"))
        return 0
    if length == 0:
        # Empty input: the task is skipped and its downstream follows their trigger rules.
        now = timezone.now()
        TaskInstance.objects.filter(pk=placeholder.pk, state=S.NONE).update(state=S.SKIPPED, start_date=now, end_date=now, duration=0)
        TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index__gte=0).exclude(state=S.REMOVED).update(state=S.REMOVED)
        return 0
    # Before the placeholder goes: which item each index stands for (read once per upstream).
    identities = expansion_identities(mapping["input"], DbResolver(dag_run, data), consumer=task_id)
    keep_unchanged = placeholder.keep_unchanged
    deleted, _ = TaskInstance.objects.filter(pk=placeholder.pk, state=S.NONE).delete()
    if not deleted:
        return 0  # another scheduler expanded it first
    # Every index may run at once unless it waits for its own index of a same-group upstream:
    # created scheduled, so a large expansion is not written a second time by the scheduling step
    # (at 100,000 instances that second write took longer than the insert).
    initial = S.NONE if task.get("same_index_upstream") else S.SCHEDULED
    reexpansion = TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index__gte=0).exists()
    with connection.cursor() as cur:
        if reexpansion:
            # Existing indexes first, so the rows inserted below are not compared with themselves.
            cur.execute(_COMPARE_IDENTITIES_SQL, {"ids": identities, "run": dag_run.pk, "task": task_id})
        # One statement for any N: 100,000 rows are generated inside PostgreSQL, not sent one by
        # one; the identities travel as one array parameter. Only a re-expansion can meet indexes
        # that exist: a first one inserts without ON CONFLICT, whose speculative insertion costs
        # an extra probe of the unique index per row.
        cur.execute(
            """
            INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, state, try_number, max_tries, hostname, updated_at,
                                           item_identity, item_change)
            SELECT %s, %s, (u.i - 1)::int, %s, 0, %s, '', now(), u.ident, %s FROM unnest(%s::text[]) WITH ORDINALITY AS u(ident, i)
            """ + ("ON CONFLICT (dag_run_id, task_id, map_index) DO NOTHING" if reexpansion else ""),
            [dag_run.pk, task_id, initial, int(task["retries"]), ItemChange.NEW if reexpansion else None, identities],
        )
        created: int = cur.rowcount
    if keep_unchanged:
        _rerun_all_but_unchanged(dag_run=dag_run, task=task, length=length)
    if reexpansion:
        TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index__gte=length).exclude(state=S.REMOVED).update(state=S.REMOVED)
        TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index__lt=length, state=S.REMOVED).update(state=initial)
    log.info("Expanded %s.%s in %s to %d instances", dag_run.dag_id, task_id, dag_run.run_id, length)
    return created


# A re-expansion compares each existing index's item identity with the new one: unchanged or
# changed, recorded on the instance; a changed index's last try gets a line naming both items, so
# its history stays labelled with the item it ran. One statement for any N.
_COMPARE_IDENTITIES_SQL = f"""
WITH new AS (SELECT u.ident, (u.i - 1)::int AS mi FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS u(ident, i)),
old AS (SELECT t.id, t.try_number, t.item_identity AS before, new.ident AS after FROM runs_taskinstance t
        JOIN new ON new.mi = t.map_index WHERE t.dag_run_id = %(run)s AND t.task_id = %(task)s AND t.map_index >= 0),
marked AS (UPDATE runs_taskinstance t SET item_identity = old.after,
        item_change = CASE WHEN old.before IS NOT DISTINCT FROM old.after THEN {literal(ItemChange.UNCHANGED)}
                           ELSE {literal(ItemChange.CHANGED)} END
        FROM old WHERE t.id = old.id)
INSERT INTO runs_taskinstancelog (task_instance_id, try_number, text, created_at)
SELECT old.id, old.try_number, '[' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '] INFO - Re-expanded over a '
       || 'changed input: this index now stands for item ' || COALESCE(old.after, '(unknown)') || '; the tries so far ran item '
       || COALESCE(old.before, '(unknown)') || E'\n', now()
FROM old WHERE old.try_number > 0 AND old.before IS DISTINCT FROM old.after
"""


def _rerun_all_but_unchanged(*, dag_run: DagRun, task: TaskData, length: int) -> int:
    """For "clear only new, changed and failed": after the comparison, an existing index runs
    again unless its item is unchanged and it succeeded; its previous result goes, as a clear drops it."""
    task_id = task["task_id"]
    rerun = (TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index__gte=0, map_index__lt=length)
             .exclude(state=S.REMOVED).exclude(item_change=ItemChange.NEW).exclude(state=S.SUCCESS, item_change=ItemChange.UNCHANGED))
    indexes = rerun.values("map_index")
    XCom.objects.filter(dag_run=dag_run, task_id=task_id, map_index__in=indexes).delete()
    TaskMap.objects.filter(dag_run=dag_run, task_id=task_id, map_index__in=indexes).delete()
    return rerun.update(state=S.NONE, end_date=None, duration=None, next_retry_at=None, queued_at=None,
                        max_tries=F("try_number") + int(task["retries"]))


def _end_placeholder_without_input(*, dag_run: DagRun, task: TaskData, counts: dict[str, dict[str, int]],
                                   placeholder: TaskInstance) -> bool:
    """The trigger rule lets the task run (all_done, none_failed, one_failed, always), but an
    upstream it maps over ended without a result: nothing can ever expand. As in Airflow the
    placeholder becomes skipped if those upstreams were skipped, else upstream_failed; waiting
    would hold the run open forever."""
    assert task["mapping"] is not None
    ended: dict[str, str] = {}
    for src in input_sources(task["mapping"]["input"]):
        states = counts.get(src["task_id"], {})
        if src["mapped"] or not states or any(s not in FINISHED_STATES for s in states) or states.get(S.SUCCESS):
            continue  # a mapped upstream's results are counted when it is done; others still run or succeeded
        ended[src["task_id"]] = next(iter(states), S.NONE)
    if not ended:
        return False
    outcome = S.SKIPPED if all(s in (S.SKIPPED, S.REMOVED) for s in ended.values()) else S.UPSTREAM_FAILED
    now = timezone.now()
    updated = TaskInstance.objects.filter(pk=placeholder.pk, state=S.NONE).update(state=outcome, start_date=now, end_date=now, duration=0)
    if updated:
        why = ", ".join(f"{t!r} ended {s}" for t, s in sorted(ended.items()))
        log_line(placeholder.pk, placeholder.try_number, f"INFO - Marking {outcome}: mapped task {task['task_id']!r} has no result to expand over ({why})")
    return bool(updated)


def expand_mapped_tasks(*, dag_run: DagRun, data: DagData) -> bool:
    did = False
    if data.get("nested"):
        did = _expand_nested_tasks(dag_run=dag_run, data=data)
    pending = [t for t in TaskInstance.objects.filter(dag_run=dag_run, map_index=-1, state=S.NONE).values_list("task_id", flat=True)
               if t in data["tasks"] and not nested.is_nested(data["tasks"][t])]
    for task_id in pending:
        task = data["tasks"].get(task_id)
        if task is not None and task["mapping"] is not None:
            started = time.monotonic()
            created = expand_mapped_task(dag_run=dag_run, data=data, task_id=task_id)
            if created:
                metrics.expanded(dag_id=dag_run.dag_id, task_id=task_id, created=created, seconds=time.monotonic() - started)
    # Work was done when a placeholder went away: expanded (even if only shrunk), skipped or failed.
    left = TaskInstance.objects.filter(dag_run=dag_run, map_index=-1, state=S.NONE, task_id__in=pending).count()
    return did or left < len(pending)


def _expand_nested_tasks(*, dag_run: DagRun, data: DagData) -> bool:
    waiting = set(TaskInstance.objects.filter(dag_run=dag_run, map_index__lt=0, state=S.NONE).values_list("task_id", flat=True))
    todo = [t for t in data["task_order"] if t in waiting and nested.is_nested(data["tasks"][t])]
    if not todo:
        return False
    seen = seen_by_downstream(dag_run=dag_run, data=data, counts=_counts_by_task(dag_run))
    did = False
    for task_id in todo:
        shared = _shared_upstream_counts(data["tasks"][task_id], seen)
        did |= nested.expand_nested_task(dag_run=dag_run, data=data, task_id=task_id, shared=shared)
    return did


def _counts_by_task(dag_run: DagRun, *, task_ids: list[str] | None = None) -> dict[str, dict[str, int]]:
    tis = TaskInstance.objects.filter(dag_run=dag_run)
    if task_ids is not None:
        tis = tis.filter(task_id__in=task_ids)
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for r in tis.values("task_id", "state").annotate(n=Count("id")):
        out[r["task_id"]][r["state"]] = r["n"]
    return out


def _upstream_counts(states: dict[str, int]) -> UpstreamCounts:
    total = sum(n for s, n in states.items() if s != S.REMOVED)
    done = sum(n for s, n in states.items() if s in FINISHED_STATES and s != S.REMOVED)
    return UpstreamCounts(total=total, success=states.get(S.SUCCESS, 0), skipped=states.get(S.SKIPPED, 0),
                          failed=states.get(S.FAILED, 0), upstream_failed=states.get(S.UPSTREAM_FAILED, 0), done=done)


def _shared_upstream_counts(task: TaskData, counts: dict[str, dict[str, int]]) -> UpstreamCounts:
    """The upstream states every index of the task shares: all but its same-index upstreams."""
    same_index = set(task.get("same_index_upstream", []))
    return sum((_upstream_counts(counts.get(up, {})) for up in task["upstream"] if up not in same_index), UpstreamCounts())


def seen_by_downstream(*, dag_run: DagRun, data: DagData, counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The state counts as a downstream's trigger rule sees them, with tolerated failures applied.

    A task under ``partial(max_failed_ratio=..., max_failed_count=...)`` (its own, or its mapped
    group's) that has failures: while some of its indexes are unfinished, its failures count as
    unfinished, so the downstream waits rather than failing early; once all are finished and the
    failures are within the tolerance, they count as successes; beyond it, as they are. Other
    tasks' counts are returned unchanged (the same dict objects).
    """
    units = tolerance_units(data)
    if not units:
        return counts
    seen = dict(counts)
    judged: dict[str, str] = {}
    for task_id, states in counts.items():
        unit = units.get(task_id)
        failed = states.get(S.FAILED, 0) + states.get(S.UPSTREAM_FAILED, 0)
        if unit is None or not failed:
            continue
        if unit["unit"] not in judged:
            judged[unit["unit"]] = _verdict(dag_run, unit)
        verdict = judged[unit["unit"]]
        if verdict in ("pending", "tolerated"):
            moved = {s: n for s, n in states.items() if s not in (S.FAILED, S.UPSTREAM_FAILED)}
            as_state = S.SUCCESS if verdict == "tolerated" else S.RUNNING
            moved[as_state] = moved.get(as_state, 0) + failed
            seen[task_id] = moved
    return seen


def _verdict(dag_run: DagRun, unit: ToleranceUnit) -> str:
    counts = unit_counts([dag_run.pk], unit).get(dag_run.pk)
    return counts.verdict(unit) if counts is not None else "none"


def tolerated_task_ids(*, dag_run: DagRun, data: DagData, task_ids: set[str]) -> set[str]:
    """Those of ``task_ids`` whose failures are all tolerated: they do not fail the run."""
    units = tolerance_units(data)
    judged = {u["unit"]: _verdict(dag_run, u) for t, u in units.items() if t in task_ids}
    return {t for t in task_ids if t in units and judged[units[t]["unit"]] == "tolerated"}


def schedule_task_instances(*, dag_run: DagRun, data: DagData) -> bool:
    """Evaluate trigger rules for instances with no state yet, and release retries that are due."""
    now = timezone.now()
    did = TaskInstance.objects.filter(dag_run=dag_run, state=S.UP_FOR_RETRY, next_retry_at__lte=now).update(state=S.SCHEDULED) > 0
    counts = _counts_by_task(dag_run)
    waiting = [t for t, states in counts.items() if states.get(S.NONE)]
    if not waiting:
        return did
    seen = seen_by_downstream(dag_run=dag_run, data=data, counts=counts)
    pending_placeholders = set(
        TaskInstance.objects.filter(dag_run=dag_run, map_index=-1, state=S.NONE, task_id__in=waiting).values_list("task_id", flat=True))
    for task_id in waiting:
        task = data["tasks"].get(task_id)
        if task is None:
            continue
        same_index = set(task.get("same_index_upstream", []))
        shared = _shared_upstream_counts(task, seen)
        if nested.uses_prefix_rules(data, task):
            # Placeholders of a nested task are its expansion's business; a -1 placeholder of a
            # task mapped one level deep only takes a negative outcome, as below.
            if task_id in pending_placeholders and not nested.is_nested(task):
                outcome = evaluate(task["trigger_rule"], shared)
                if outcome in ("skipped", "upstream_failed"):
                    did |= _apply(dag_run, task_id, outcome, Q(map_index=-1))
            did |= nested.schedule_prefix_instances(dag_run, data, task, shared)
            continue
        is_placeholder = task["mapping"] is not None and task_id in pending_placeholders
        if not same_index or is_placeholder:
            outcome = evaluate(task["trigger_rule"], shared)
            if is_placeholder:
                # An unexpanded task is expanded, never run; only a negative outcome applies to it.
                if outcome in ("skipped", "upstream_failed"):
                    did |= _apply(dag_run, task_id, outcome, Q(map_index=-1))
                continue
            did |= _apply(dag_run, task_id, outcome, Q())
            continue
        # Depth-first inside a mapped task group: index i waits only for index i upstream.
        did |= _schedule_same_index(dag_run, task_id, task["trigger_rule"], shared, sorted(same_index))
    return did


# Per waiting index, the states of its same-index upstreams, only for indexes where at least one
# of them has finished: the others all share one outcome, decided once without reading them.
_SAME_INDEX_SQL = f"""
SELECT t.map_index,
       count(*) FILTER (WHERE u.state = {literal(S.SUCCESS)}), count(*) FILTER (WHERE u.state = {literal(S.SKIPPED)}),
       count(*) FILTER (WHERE u.state = {literal(S.FAILED)}), count(*) FILTER (WHERE u.state = {literal(S.UPSTREAM_FAILED)}),
       count(*) FILTER (WHERE u.state = {literal(S.REMOVED)})
FROM runs_taskinstance t
JOIN runs_taskinstance u ON u.dag_run_id = t.dag_run_id AND u.map_index = t.map_index AND u.task_id = ANY(%(ups)s)
WHERE t.dag_run_id = %(run)s AND t.task_id = %(task)s AND t.state = {literal(S.NONE)} AND t.map_index >= 0
  AND u.state IN ({literals(S.SUCCESS, S.SKIPPED, S.FAILED, S.UPSTREAM_FAILED, S.REMOVED)})
GROUP BY t.map_index
"""


def _schedule_same_index(dag_run: DagRun, task_id: str, rule: str, shared: UpstreamCounts, same_index: list[str]) -> bool:
    n = len(same_index)
    did = False
    by_outcome: dict[str, list[int]] = defaultdict(list)
    with connection.cursor() as cur:
        cur.execute(_SAME_INDEX_SQL, {"ups": same_index, "run": dag_run.pk, "task": task_id})
        decided = cur.fetchall()
    for mi, success, skipped, failed, upstream_failed, removed in decided:
        # A removed upstream index counts for nothing, as removed instances do everywhere.
        c = shared + UpstreamCounts(total=n - removed, success=success, skipped=skipped, failed=failed,
                                    upstream_failed=upstream_failed, done=success + skipped + failed + upstream_failed)
        by_outcome[evaluate(rule, c)].append(mi)
    # Indexes with no finished same-index upstream all get this outcome (usually "wait").
    untouched = evaluate(rule, shared + UpstreamCounts(total=n))
    if untouched != "wait":
        did |= _apply(dag_run, task_id, untouched, Q(map_index__gte=0) & ~Q(map_index__in=[r[0] for r in decided]))
    for outcome, mis in by_outcome.items():
        for start in range(0, len(mis), 10_000):
            did |= _apply(dag_run, task_id, outcome, Q(map_index__in=mis[start : start + 10_000]))
    return did


def _apply(dag_run: DagRun, task_id: str, outcome: str, where: Q) -> bool:
    if outcome == "wait":
        return False
    qs = TaskInstance.objects.filter(where, dag_run=dag_run, task_id=task_id, state=S.NONE)
    if outcome == "run":
        return qs.update(state=S.SCHEDULED) > 0
    now = timezone.now()
    return qs.update(state=outcome, start_date=now, end_date=now, duration=0) > 0


def queue_task_instances(*, dag_run: DagRun, data: DagData, executor: Executor) -> bool:
    """scheduled -> queued (try_number + 1), within each task's max_active_tis_per_dagrun, then dispatch."""
    limited = {t: v["max_active_tis_per_dagrun"] for t, v in data["tasks"].items() if v.get("max_active_tis_per_dagrun")}
    queued: list[int] = []
    with connection.cursor() as cur:
        if limited:
            active = dict(TaskInstance.objects.filter(dag_run=dag_run, task_id__in=list(limited), state__in=[S.QUEUED, S.RUNNING])
                          .values_list("task_id").annotate(n=Count("id")))
            for task_id, cap in limited.items():
                room = cap - active.get(task_id, 0)
                if room > 0:
                    queued += _queue(cur, dag_run, _QUEUE_ONE_TASK_SQL, [task_id], room)
        others = [t for t in data["tasks"] if t not in limited]
        if others:
            queued += _queue(cur, dag_run, _QUEUE_OTHER_TASKS_SQL, [list(limited)], QUEUE_BATCH)
    if queued:
        executor.queue(queued)
    return bool(queued)


def _queue_sql(task_filter: str) -> str:
    # A materialized CTE, not "WHERE id IN (... LIMIT n)": PostgreSQL may plan that as a nested
    # loop that re-runs the subquery per row, each run skipping the rows just updated, so LIMIT
    # (and with it max_active_tis_per_dagrun) would not hold.
    return f"""
        WITH picked AS MATERIALIZED (
            SELECT id FROM runs_taskinstance
            WHERE dag_run_id = %s AND state = {literal(S.SCHEDULED)} {task_filter}
            ORDER BY task_id, map_index LIMIT %s FOR UPDATE SKIP LOCKED
        )
        UPDATE runs_taskinstance AS ti SET state = {literal(S.QUEUED)}, queued_at = now(), updated_at = now(),
            -- resuming after a deferral (next_method set) continues the same try
            try_number = ti.try_number + CASE WHEN ti.next_method IS NULL THEN 1 ELSE 0 END
        FROM picked WHERE ti.id = picked.id AND ti.state = {literal(S.SCHEDULED)}
        RETURNING ti.id
        """


# Parameters: the run, the task filter's (a task id, or the list of tasks not to queue), the limit.
_QUEUE_ONE_TASK_SQL = _queue_sql("AND task_id = %s")
_QUEUE_OTHER_TASKS_SQL = _queue_sql("AND NOT (task_id = ANY(%s))")


def _queue(cur: Any, dag_run: DagRun, sql: str, params: list[Any], limit: int) -> list[int]:
    cur.execute(sql, [dag_run.pk, *params, limit])
    return [r[0] for r in cur.fetchall()]


def update_dag_run_state(*, dag_run: DagRun, data: DagData) -> bool:
    """A run ends when no instance can change any more: failed if a leaf failed, else success."""
    if TaskInstance.objects.filter(dag_run=dag_run, state__in=UNFINISHED_STATES).exists():
        return False
    leaves = [t for t, v in data["tasks"].items() if not v["downstream"]]
    failed_leaves = set(TaskInstance.objects.filter(dag_run=dag_run, task_id__in=leaves, state__in=[S.FAILED, S.UPSTREAM_FAILED])
                        .values_list("task_id", flat=True).distinct())
    # A leaf whose failures are within its partial(max_failed_...) tolerance does not fail the run.
    leaf_failed = bool(failed_leaves - tolerated_task_ids(dag_run=dag_run, data=data, task_ids=failed_leaves))
    state = DagRunState.FAILED if leaf_failed else DagRunState.SUCCESS
    # Frozen with the final state: the Grid never aggregates a finished run's instances again.
    summary = summaries.aggregate([dag_run.pk]).get(dag_run.pk, [])
    end = timezone.now()
    if not DagRun.objects.filter(pk=dag_run.pk, state=DagRunState.RUNNING).update(state=state, end_date=end, state_summary=summary):
        return False
    # Its live counts stay (a clear reopens the run and reads them again), summed into one row per (task, state).
    summaries.compact(dag_run.pk)
    metrics.dag_run_finished(dag_id=dag_run.dag_id, state=state,
                             seconds=(end - dag_run.start_date).total_seconds() if dag_run.start_date else None)
    return True


def start_dag_run(*, dag_run: DagRun) -> bool:
    """queued -> running while the DAG has fewer than max_active_runs running."""
    # The DAG's row lock serializes starts: two schedulers starting two runs of one DAG would
    # otherwise both count the running runs before either commits, and exceed the cap.
    dag = DagModel.objects.select_for_update(skip_locked=True).filter(dag_id=dag_run.dag_id).first()
    if dag is None and DagModel.objects.filter(dag_id=dag_run.dag_id).exists():
        return False  # another scheduler is starting a run of this DAG; try again on the next pass
    cap = dag.max_active_runs if dag is not None else 16
    running = DagRun.objects.filter(dag_id=dag_run.dag_id, state=DagRunState.RUNNING).count()
    if running >= cap:
        return False
    return DagRun.objects.filter(pk=dag_run.pk, state=DagRunState.QUEUED).update(state=DagRunState.RUNNING, start_date=timezone.now()) > 0


def schedule_dag_run(*, dag_run_id: int, executor: Executor) -> bool:
    """One pass over one run, under its row lock; skipped if another scheduler holds it."""
    with transaction.atomic():
        # of=("self",): lock the run only; locking the joined SerializedDag too would make other
        # schedulers skip every run of the same DAG version while this pass holds it.
        # no_key: FOR NO KEY UPDATE still keeps other schedulers out, but not the workers, whose
        # results and logs reference the run (a foreign key check takes FOR KEY SHARE on it).
        dag_run = (DagRun.objects.select_for_update(skip_locked=True, no_key=True, of=("self",)).select_related("serialized_dag")
                   .filter(pk=dag_run_id, state__in=[DagRunState.QUEUED, DagRunState.RUNNING]).first())
        if dag_run is None:
            return False
        did = False
        if dag_run.state == DagRunState.QUEUED:
            if not start_dag_run(dag_run=dag_run):
                return False
            dag_run.state = DagRunState.RUNNING
            did = True
        data = dag_run.serialized_dag.dag_data()
        did |= expand_mapped_tasks(dag_run=dag_run, data=data)
        did |= schedule_task_instances(dag_run=dag_run, data=data)
        did |= start_from_triggers(dag_run=dag_run, data=data)
        did |= queue_task_instances(dag_run=dag_run, data=data, executor=executor)
        did |= update_dag_run_state(dag_run=dag_run, data=data)
        # Last: queueing work matters more than names, which come in batches over passes. In a
        # savepoint of its own, so that nothing going wrong there undoes the expansion and queueing.
        try:
            with transaction.atomic():
                did |= name_mapped_instances(dag_run=dag_run, data=data)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("Naming instances of run %s of %s failed; they keep their indexes as names", dag_run.run_id, dag_run.dag_id)
        return did


def active_dag_run_ids() -> list[int]:
    """Runs to pass over. As in Airflow, a paused DAG's runs wait (a run triggered while it is
    paused stays queued; a running one starts nothing new) until it is unpaused."""
    paused = DagModel.objects.filter(is_paused=True).values("dag_id")
    return list(DagRun.objects.filter(state__in=[DagRunState.QUEUED, DagRunState.RUNNING]).exclude(run_type=DagRunType.TEST)
                .exclude(dag_id__in=paused).order_by("logical_date").values_list("pk", flat=True))


def next_retry_time(task: TaskData | None) -> timedelta:
    return timedelta(seconds=float(task.get("retry_delay") or 0) if task is not None else 0.0)


def fail_dead_task_instances(*, now: datetime | None = None) -> int:
    """Running instances whose heartbeat went stale lost their worker (kill -9, OOM, machine gone):
    retry them if they have tries left, else fail them, with the reason in the try's log."""
    now = now or timezone.now()
    timeout = float(settings.TASK_HEARTBEAT_TIMEOUT_SEC)
    cutoff = now - timedelta(seconds=timeout)
    dead = list(TaskInstance.objects.filter(state=S.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, start_date__lt=cutoff))
        .select_related("dag_run__serialized_dag")[:500])
    handled = 0
    for ti in dead:
        task = ti.dag_run.serialized_dag.dag_data()["tasks"].get(ti.task_id)
        retry = ti.try_number <= ti.max_tries
        state = S.UP_FOR_RETRY if retry else S.FAILED
        extra = {"next_retry_at": now + next_retry_time(task)} if retry else {}
        # Compare-and-swap on the heartbeat too: a beat that lands meanwhile keeps the try alive.
        if TaskInstance.objects.filter(pk=ti.pk, state=S.RUNNING, try_number=ti.try_number, heartbeat_at=ti.heartbeat_at).update(
                state=state, end_date=now, duration=(now - ti.start_date).total_seconds() if ti.start_date else None, **extra):
            log_line(ti.pk, ti.try_number, f"ERROR - No heartbeat for more than {timeout:.0f} s: the worker running this try "
                     f"({ti.hostname or 'unknown host'}, pid {ti.pid}) died or was lost. Marking {state.upper()}.")
            # The try ended, though no worker said so: counted where its worker would have.
            metrics.ti_finished(dag_id=ti.dag_run.dag_id, task_id=ti.task_id, state=state)
            if retry:
                history.keep_current_tries([ti.pk])
            handled += 1
    return handled


def resumed_try_number_back() -> Any:
    """The try number a lost message gives back: one, unless the instance was resuming a deferral
    (queueing did not count a new try for it)."""
    from django.db.models import Case, PositiveIntegerField, When

    return Case(When(next_method__isnull=True, then=F("try_number") - 1), default=F("try_number"), output_field=PositiveIntegerField())


def requeue_lost_task_instances(*, now: datetime | None = None) -> int:
    """Queued instances that never started (their message was lost, e.g. with a broker restart)
    go back to scheduled for the same try, so the next queueing sends them again."""
    now = now or timezone.now()
    timeout = float(settings.TASK_QUEUED_TIMEOUT_SEC)
    stuck = list(TaskInstance.objects.filter(state=S.QUEUED, queued_at__lt=now - timedelta(seconds=timeout))
                 .values_list("pk", "try_number")[:5000])
    handled = 0
    for pk, try_number in stuck:
        if TaskInstance.objects.filter(pk=pk, state=S.QUEUED, try_number=try_number).update(
                state=S.SCHEDULED, try_number=resumed_try_number_back(), queued_at=None):
            log_line(pk, try_number, f"WARNING - Queued for more than {timeout:.0f} s without starting: sending it again")
            handled += 1
    return handled
