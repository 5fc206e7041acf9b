"""4b. Grid view of RUNNING runs: the page and its 2-second htmx refresh, 3 running runs x 10 tasks
(5 mapped) at 1,000 and 100,000 instances per mapped task. A live run has no frozen summary: the
page reads its live counts (runs.models.TaskCount), which the triggers wrote as the instances were
inserted, and must cost the same at both sizes. Also the number of SQL queries per request."""
from __future__ import annotations

from bench.b4_grid import MAPPED_TASKS, URL_NAME, expected_figures, grid_figures
from bench.common import Context, Figure, analyze, delete_runs, missing, view_missing

TITLE = "live grid"
NEEDS_STACK = False
NUM_RUNS = 3

# Instances of a run still going: most done, the rest running, queued, scheduled or not yet evaluated.
LIVE_MIX_SQL = """CASE WHEN i %% 50 = 7 THEN 'failed' WHEN i %% 10 = 1 THEN 'running' WHEN i %% 10 = 2 THEN 'queued'
                   WHEN i %% 10 = 3 THEN 'scheduled' WHEN i %% 10 >= 6 THEN 'none' ELSE 'success' END"""


def sizes(ctx: Context) -> list[tuple[str, int]]:
    return [("bench_live_small", 10), ("bench_live_huge", 100)] if ctx.quick else [
        ("bench_live_small", 1000), ("bench_live_huge", 100_000)]


def repeats(ctx: Context) -> int:
    return 1 if ctx.quick else 15


def build(dag_id: str, per_task: int) -> None:
    """Three running runs, each mapped task expanded to per_task instances in one INSERT ... SELECT
    (the counts come from the triggers, as they would from an expansion)."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from runs.models import DagRun, DagRunState, TaskInstance
    from runs.services import create_dag_run

    delete_runs(dag_id)
    for r in range(NUM_RUNS):
        when = timezone.now() - timedelta(minutes=10 - r)
        run = create_dag_run(dag_id=dag_id, run_id=f"live_{r}", logical_date=when)
        DagRun.objects.filter(pk=run.pk).update(state=DagRunState.RUNNING, start_date=when)
        TaskInstance.objects.filter(dag_run=run, task_id="source").update(state="success", try_number=1, start_date=when,
                                                                          end_date=when, duration=0.5)
        TaskInstance.objects.filter(dag_run=run, task_id__in=MAPPED_TASKS, map_index=-1).update(state="removed")
        with connection.cursor() as cur:
            for task_id in MAPPED_TASKS:
                cur.execute(
                    f"""
                    INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, state, try_number, max_tries, hostname,
                                                   start_date, end_date, duration, updated_at)
                    SELECT %s, %s, i, {LIVE_MIX_SQL}, 1, 0, 'bench',
                           CASE WHEN i %% 10 < 6 AND i %% 10 NOT IN (2, 3) THEN %s + i * interval '1 millisecond' END,
                           CASE WHEN i %% 10 IN (0, 4, 5) OR i %% 50 = 7 THEN %s + i * interval '2 millisecond' END,
                           CASE WHEN i %% 10 IN (0, 4, 5) OR i %% 50 = 7 THEN i / 1000.0 END, now()
                    FROM generate_series(0, %s) AS i
                    """,
                    [run.pk, task_id, when, when, per_task - 1],
                )


def _labels(ctx: Context) -> list[str]:
    return [f"{NUM_RUNS}x10 running, {per}/mapped" for _, per in sizes(ctx)]


def expected(ctx: Context) -> list[tuple[str, str, str]]:
    return expected_figures(TITLE, _labels(ctx))


def run(ctx: Context) -> list[Figure]:
    reason = view_missing(URL_NAME)
    if reason:
        return [missing(n, s, u, reason) for n, s, u in expected(ctx)]
    for dag_id, per in sizes(ctx):
        build(dag_id, per)
    analyze()
    return grid_figures(TITLE, [dag_id for dag_id, _ in sizes(ctx)], _labels(ctx), repeats(ctx))
