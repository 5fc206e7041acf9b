"""Tolerated failures in the database: the counts one tolerance is judged on, aggregated in SQL.

The rule itself is pure (``dagsapp.tolerance.Tolerance.verdict``); the scheduler asks it what a
downstream sees, the dashboard asks it what a cell shows. Both read the counts from here.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from dagsapp.serialization import ToleranceUnit, tolerance_rule
from dagsapp.tolerance import Verdict
from runs.models import TaskInstanceState
from runs.models.taskinstance import UNFINISHED_STATES
from runs.sqltext import literal, literals

S = TaskInstanceState

# Per run, over the unit's tasks (one mapped task, or every task of a mapped group), counted by
# index: an index of a group failed if any of its tasks did. Served by index ti_run_task_state.
_UNIT_SQL = f"""
SELECT dag_run_id,
       count(DISTINCT map_index) FILTER (WHERE map_index >= 0 AND state <> {literal(S.REMOVED)}),
       count(DISTINCT map_index) FILTER (WHERE map_index >= 0 AND state IN ({literals(S.FAILED, S.UPSTREAM_FAILED)})),
       count(DISTINCT map_index) FILTER (WHERE map_index >= 0 AND state NOT IN ({literals(S.SUCCESS, S.REMOVED)})),
       count(*) FILTER (WHERE state IN ({literals(*sorted(UNFINISHED_STATES))})),
       count(*) FILTER (WHERE map_index = -1)
FROM runs_taskinstance WHERE dag_run_id = ANY(%s) AND task_id = ANY(%s)
GROUP BY dag_run_id
"""


@dataclass(frozen=True)
class UnitCounts:
    """A unit's indexes in one run: ``total`` not removed, ``failed`` failed or upstream_failed
    (after retries: up_for_retry is unfinished), ``succeeded`` all success."""

    total: int = 0
    failed: int = 0
    succeeded: int = 0
    unfinished: int = 0
    placeholders: int = 0

    def verdict(self, unit: ToleranceUnit) -> Verdict:
        return tolerance_rule(unit["tolerance"]).verdict(
            total=self.total, failed=self.failed, unfinished=self.unfinished, expanded=not self.placeholders)

    def describe(self) -> str:
        """'97 of 100 succeeded, 3 failures tolerated' (or '1 failure')."""
        plural = "" if self.failed == 1 else "s"
        return f"{self.succeeded} of {self.total} succeeded, {self.failed} failure{plural} tolerated"


def unit_counts(run_ids: Iterable[int], unit: ToleranceUnit) -> dict[int, UnitCounts]:
    """One grouped query for any number of runs and instances."""
    ids = list(run_ids)
    if not ids:
        return {}
    with connection.cursor() as cur:
        cur.execute(_UNIT_SQL, [ids, unit["task_ids"]])
        return {run_id: UnitCounts(total=total, failed=failed, succeeded=total - not_success, unfinished=unfinished,
                                   placeholders=placeholders)
                for run_id, total, failed, not_success, unfinished, placeholders in cur.fetchall()}
