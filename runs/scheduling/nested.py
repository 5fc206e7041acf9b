"""Nested mapping: tasks mapped more than one level deep (an expand inside a mapped task group, or
a mapped group inside a mapped group). Airflow refuses these (#29339, #55759).

An instance of such a task is identified by its path of indexes, one per mapping level
(``TaskInstance.map_path``, ``fetch [2][5]``). Expansion goes level by level and prefix by prefix:
a placeholder with a path of length k (the run starts with the -1 placeholder, path ``[]``) is
replaced by the items of level k's input resolved at that prefix, as soon as that input is
there: placeholders one level deeper, or the instances themselves at the last level. So each
outer index goes on as soon as its own inputs are ready (depth-first), without waiting for the
others. Trigger rules count, for each upstream, only its instances under the path prefix the two
tasks share (the levels of their common mapped groups).
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

from django.db import connection
from django.utils import timezone

from dagsapp.exceptions import MappingError
from dagsapp.expandinput import expand_input_length
from dagsapp.serialization import DagData, TaskData, input_sources
from dagsapp.xcom_arg import shared_levels
from runs.logs import log_line
from runs.models import DagRun, TaskInstance, TaskInstanceState
from runs.models.taskinstance import FINISHED_STATES
from runs.resolver import DbResolver, path_sql, prefix_label, task_levels
from runs.scheduling.trigger_rules import UpstreamCounts, evaluate
from runs.sqltext import literal

log = logging.getLogger(__name__)
S = TaskInstanceState


def is_nested(task: TaskData) -> bool:
    return len(task.get("levels", [])) > 1


def uses_prefix_rules(data: DagData, task: TaskData) -> bool:
    """Instances of this task wait for their upstreams by path prefix (the nested-mapping rules)."""
    return bool(data.get("nested")) and task["mapping"] is not None and (is_nested(task) or bool(task.get("same_index_upstream")))


def _state_counts(states: dict[str, int]) -> UpstreamCounts:
    total = sum(n for s, n in states.items() if s != S.REMOVED)
    done = sum(n for s, n in states.items() if s in FINISHED_STATES and s != S.REMOVED)
    return UpstreamCounts(total=total, success=states.get(S.SUCCESS, 0), skipped=states.get(S.SKIPPED, 0),
                          failed=states.get(S.FAILED, 0), upstream_failed=states.get(S.UPSTREAM_FAILED, 0), done=done)


# For each waiting row of the task (placeholders of one level, or instances), the states of an
# upstream's rows under the prefix the two share: its instances there, and its placeholders
# whose shorter path covers it (still to expand, so unfinished for everyone under them). The
# upstream's instances are counted per prefix first, so the join is between the waiting rows and
# a few rows per prefix: 300 waiting rows over 30,000 upstream instances is 300 x 300, not nine
# million comparisons (whatever plan the statistics of a table that just grew lead to).
_PREFIX_COUNTS_SQL = f"""
WITH p AS MATERIALIZED (SELECT map_index, {path_sql("t")} AS path FROM runs_taskinstance t
                        WHERE t.dag_run_id = %(run)s AND t.task_id = %(task)s AND t.state = {literal(S.NONE)} AND {{where}}),
u AS MATERIALIZED (SELECT state, {path_sql("t")} AS path FROM runs_taskinstance t WHERE t.dag_run_id = %(run)s AND t.task_id = %(up)s),
agg AS (SELECT u.path[1:%(c)s] AS prefix, u.state, count(*) AS n FROM u WHERE cardinality(u.path) >= %(c)s GROUP BY 1, 2),
cover AS MATERIALIZED (SELECT u.state, u.path FROM u WHERE cardinality(u.path) < %(c)s)
SELECT p.map_index, agg.state, agg.n FROM p JOIN agg ON agg.prefix = p.path[1:%(c)s]
UNION ALL
SELECT p.map_index, cover.state, count(*) FROM p JOIN cover ON cover.path = p.path[1:cardinality(cover.path)]
GROUP BY 1, 2
"""
_FOR_INSTANCES = _PREFIX_COUNTS_SQL.replace("{where}", "t.map_index >= 0")
_FOR_PLACEHOLDERS = _PREFIX_COUNTS_SQL.replace("{where}", f"t.map_index < 0 AND cardinality({path_sql('t')}) = %(k)s")


def _prefix_counts(sql: str, params: dict[str, Any]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = defaultdict(dict)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        for map_index, state, n in cur.fetchall():
            out[map_index][state] = out[map_index].get(state, 0) + n
    return out


def _counts_by_row(dag_run: DagRun, data: DagData, task_id: str, upstreams: list[tuple[str, int]], sql: str,
                   extra: dict[str, Any]) -> dict[int, UpstreamCounts]:
    by_row: dict[int, UpstreamCounts] = defaultdict(UpstreamCounts)
    for up, c in upstreams:
        counts = _prefix_counts(sql, {"run": dag_run.pk, "task": task_id, "up": up, "c": c, **extra})
        for row, states in counts.items():
            by_row[row] = by_row[row] + _state_counts(states)
    return by_row


def prefix_upstreams(data: DagData, task: TaskData) -> list[tuple[str, int]]:
    """(upstream, levels shared with it) for the upstreams that share at least one level."""
    levels = task_levels(data, task["task_id"])
    out = []
    for up in task["upstream"]:
        c = shared_levels(levels, task_levels(data, up))
        if c:
            out.append((up, c))
    return out


def schedule_prefix_instances(dag_run: DagRun, data: DagData, task: TaskData, shared: UpstreamCounts) -> bool:
    """Evaluate the trigger rule of each waiting instance over its upstreams under its path prefix."""
    task_id = task["task_id"]
    upstreams = prefix_upstreams(data, task)
    by_row = _counts_by_row(dag_run, data, task_id, upstreams, _FOR_INSTANCES, {})
    waiting = TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, state=S.NONE, map_index__gte=0)
    by_outcome: dict[str, list[int]] = defaultdict(list)
    for map_index in waiting.values_list("map_index", flat=True):
        counts = by_row.get(map_index, UpstreamCounts())
        if upstreams and counts.total == 0:
            continue  # its upstreams' rows under its prefix are not there yet
        by_outcome[evaluate(task["trigger_rule"], shared + counts)].append(map_index)
    did = False
    now = timezone.now()
    for outcome, indexes in by_outcome.items():
        if outcome == "wait":
            continue
        qs = TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, state=S.NONE, map_index__in=indexes)
        if outcome == "run":
            did |= qs.update(state=S.SCHEDULED) > 0
        else:
            did |= qs.update(state=outcome, start_date=now, end_date=now, duration=0) > 0
    return did


def expand_nested_task(*, dag_run: DagRun, data: DagData, task_id: str, shared: UpstreamCounts) -> bool:
    """Expand every placeholder of a nested task whose level input is ready at its prefix."""
    task = data["tasks"][task_id]
    levels = task["levels"]
    placeholders = list(TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, state=S.NONE, map_index__lt=0)
                        .values_list("pk", "map_index", "map_path", "try_number"))
    if not placeholders:
        return False
    upstreams = prefix_upstreams(data, task)
    # Instances set aside by a clear come back at their paths; without any, no need to look.
    reuse = TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, state=S.REMOVED, map_index__gte=0).exists()
    did = False
    for k in sorted({len(p[2] or []) for p in placeholders}):
        # Only the upstreams that share fewer levels than k + 1 decide whether level k expands;
        # the others are waited for by each instance (or deeper placeholder) under it.
        gate = [(up, c) for up, c in upstreams if c <= k]
        by_row = _counts_by_row(dag_run, data, task_id, gate, _FOR_PLACEHOLDERS, {"k": k})
        ready: list[tuple[int, list[int], int]] = []
        for pk, map_index, path, try_number in placeholders:
            prefix = list(path or [])
            if len(prefix) != k:
                continue
            outcome = evaluate(task["trigger_rule"], shared + by_row.get(map_index, UpstreamCounts()))
            if outcome in ("skipped", "upstream_failed"):
                did |= _end(pk, try_number, outcome, f"its upstreams at {prefix_label(prefix)} ended {outcome}")
            elif outcome == "run":
                got = _length_at(dag_run, data, task, pk, try_number, prefix, levels[k]["input"])
                if isinstance(got, bool):  # before int: a bool is one
                    did |= got
                else:
                    ready.append((pk, prefix, got))
        # Every prefix of the level that is ready expands in two statements, however many there are.
        did |= _expand_many(dag_run, data, task, k, ready, reuse=reuse)
    return did


def _end(pk: int, try_number: int, state: str, why: str) -> bool:
    now = timezone.now()
    updated = TaskInstance.objects.filter(pk=pk, state=S.NONE).update(state=state, start_date=now, end_date=now, duration=0)
    if updated:
        log_line(pk, try_number, f"INFO - Marking {state}: {why}")
    return bool(updated)


def _fail(pk: int, try_number: int, task_id: str, prefix: list[int], reason: str) -> bool:
    from django.db.models import F

    now = timezone.now()
    updated = TaskInstance.objects.filter(pk=pk, state=S.NONE).update(
        state=S.FAILED, try_number=F("try_number") + 1, start_date=now, end_date=now, duration=0)
    if updated:
        log_line(pk, try_number + 1, f"ERROR - Cannot expand mapped task {task_id!r} at {prefix_label(prefix)}: {reason}")
    return bool(updated)


def _ended_sources(dag_run: DagRun, data: DagData, spec: Any, prefix: list[int]) -> dict[str, str]:
    """Upstreams the level reads that ended without a result at this prefix: it can never expand."""
    resolver = DbResolver(dag_run, data, path=prefix)
    ended: dict[str, str] = {}
    for src in input_sources(spec):
        scope = int(src.get("scope", 0))
        if scope and src["mapped"]:
            continue  # one item per instance: counted once they are all done
        if scope:
            found = resolver.instance_at(src["task_id"], prefix[:scope])
            state = found[1] if found else None
        else:
            state = TaskInstance.objects.filter(dag_run=dag_run, task_id=src["task_id"], map_index=-1).values_list("state", flat=True).first()
        if state is not None and state in FINISHED_STATES and state != S.SUCCESS:
            ended[src["task_id"]] = state
    return ended


def _length_at(dag_run: DagRun, data: DagData, task: TaskData, pk: int, try_number: int, prefix: list[int],
               spec: Any) -> int | bool:
    """The number of items of the level's input at this prefix, ready to expand (an int); or
    whether the placeholder ended instead (failed, skipped, upstream_failed: a bool)."""
    task_id = task["task_id"]
    try:
        length = expand_input_length(spec, DbResolver(dag_run, data, path=prefix))
    except MappingError as exc:
        return _fail(pk, try_number, task_id, prefix, str(exc))
    if length is None:
        ended = _ended_sources(dag_run, data, spec, prefix)
        if not ended:
            return False
        state = S.SKIPPED if all(s in (S.SKIPPED, S.REMOVED) for s in ended.values()) else S.UPSTREAM_FAILED
        why = ", ".join(f"{t!r} ended {s}" for t, s in sorted(ended.items()))
        return _end(pk, try_number, state, f"mapped task {task_id!r} has no result to expand over at {prefix_label(prefix)} ({why})")
    limit = int(task["max_map_length"] or _default_limit())
    if length > limit:
        return _fail(pk, try_number, task_id, prefix, f"its input has {length} items, more than the limit of {limit} "
                     "(raise it with partial(max_map_length=...) or the MAX_MAP_LENGTH setting)")
    if length == 0:
        return _end(pk, try_number, S.SKIPPED, f"the input of {task_id!r} at {prefix_label(prefix)} is empty")
    return length


def _expand_many(dag_run: DagRun, data: DagData, task: TaskData, k: int, ready: list[tuple[int, list[int], int]],
                 *, reuse: bool) -> bool:
    """Replace the placeholders of level k by their rows: one delete and one insert for all of
    them (a nested task with 1,000 outer indexes was 2,000 statements, one pair per index)."""
    if not ready:
        return False
    task_id = task["task_id"]
    depth = len(task["levels"])
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM runs_taskinstance WHERE id = ANY(%s) AND state = {literal(S.NONE)} RETURNING id",
                    [[pk for pk, _, _ in ready]])
        deleted = {r[0] for r in cur.fetchall()}
        ready = [r for r in ready if r[0] in deleted]  # the others another scheduler expanded first
        if not ready:
            return False
        leaves = k + 1 == depth
        # Leaves wait for same-level upstreams (a sibling in the innermost mapped group); otherwise
        # every upstream was counted at some level already, so they are created scheduled.
        waits = any(c == depth for _up, c in prefix_upstreams(data, task))
        state = S.NONE if not leaves or waits else S.SCHEDULED
        params: dict[str, Any] = {"run": dag_run.pk, "task": task_id, "k": k, "state": state, "retries": int(task["retries"]),
                                  "items": json.dumps([{"o": o, "p": prefix, "n": n} for o, (_, prefix, n) in enumerate(ready)])}
        if leaves and reuse:
            # A re-expansion reuses the instances it had at these paths (their tries kept).
            for _, prefix, n in ready:
                cur.execute(_REUSE_SQL, {**params, "prefix": prefix, "n": n})
        cur.execute(_INSERT_LEAVES_SQL if leaves else _INSERT_PLACEHOLDERS_SQL, params)
    log.info("Expanded %s.%s in %s at %d prefixes of level %d (%s)", dag_run.dag_id, task_id, dag_run.run_id, len(ready), k,
             ", ".join(f"{prefix_label(prefix)}: {n}" for _, prefix, n in ready[:5]) + (", ..." if len(ready) > 5 else ""))
    return True


def _default_limit() -> int:
    from django.conf import settings

    return int(settings.MAX_MAP_LENGTH)


# New rows get the next free map_index: after the largest for instances, below the smallest for
# placeholders. Under the run's lock, so two expansions never pick the same numbers (and the
# unique constraints would refuse it if they did).
_NEW_PATHS = """
items AS (SELECT (e ->> 'o')::int AS o, (e ->> 'n')::int AS n, ARRAY(SELECT jsonb_array_elements_text(e -> 'p')::int) AS prefix
          FROM jsonb_array_elements(%(items)s::jsonb) AS e),
new AS (SELECT c.path, row_number() OVER (ORDER BY c.o, c.i) AS rn
        FROM (SELECT items.o, g.i, items.prefix || (g.i - 1) AS path FROM items, generate_series(1, items.n) AS g(i)) AS c
        WHERE NOT EXISTS (SELECT 1 FROM runs_taskinstance e WHERE e.dag_run_id = %(run)s AND e.task_id = %(task)s
                          AND e.map_path = c.path))
"""
_INSERT_LEAVES_SQL = f"""
WITH base AS (SELECT GREATEST(COALESCE(max(map_index), -1), -1) AS m FROM runs_taskinstance WHERE dag_run_id = %(run)s AND task_id = %(task)s),
{_NEW_PATHS}
INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, map_path, state, try_number, max_tries, hostname, updated_at)
SELECT %(run)s, %(task)s, base.m + new.rn, new.path, %(state)s, 0, %(retries)s, '', now() FROM new, base
"""
_INSERT_PLACEHOLDERS_SQL = f"""
WITH base AS (SELECT LEAST(COALESCE(min(map_index), -1), -1) AS m FROM runs_taskinstance WHERE dag_run_id = %(run)s AND task_id = %(task)s),
{_NEW_PATHS}
INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, map_path, state, try_number, max_tries, hostname, updated_at)
SELECT %(run)s, %(task)s, base.m - new.rn, new.path, %(state)s, 0, %(retries)s, '', now() FROM new, base
"""
# Instances a clear set aside under this prefix come back if their index is still in range.
_REUSE_SQL = f"""
UPDATE runs_taskinstance SET state = %(state)s, updated_at = now()
WHERE dag_run_id = %(run)s AND task_id = %(task)s AND state = {literal(S.REMOVED)} AND map_index >= 0
  AND cardinality(map_path) = %(k)s + 1 AND map_path[1:%(k)s] = %(prefix)s::int[] AND map_path[%(k)s + 1] < %(n)s
"""
