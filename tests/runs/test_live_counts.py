"""Live per-(run, task, state) counts (runs.models.TaskCount): kept by statement-level triggers,
equal to a GROUP BY over the instances after every kind of change, and under concurrent writers."""

from __future__ import annotations

import random
import sys
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from dagsapp.triggers import TimeDeltaTrigger
from runs import deferral, summaries
from runs.execution.execute import execute_task_instances
from runs.models import DagRun, TaskCount, TaskInstance
from runs.scheduling.executors import InlineExecutor
from runs.scheduling.steps import schedule_dag_run
from runs.services import clear_dag_run, clear_task_instances, create_dag_run, mark_dag_run, mark_task_instances
from runs.web.queries import grid_cells, mapped_summary, run_summary
from tests.runs.factories import make_run, ti
from tests.runs.triggering.dag_sources import CLEAR

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


Counts = dict[tuple[str, str], tuple[int, int, int, float]]

_TABLE_SQL = """
SELECT task_id, state, count(*), count(*) FILTER (WHERE map_index < 0),
       count(duration) FILTER (WHERE map_index >= 0), coalesce(sum(duration) FILTER (WHERE map_index >= 0), 0)
FROM runs_taskinstance WHERE dag_run_id = %s GROUP BY task_id, state
"""
_LIVE_SQL = """
SELECT task_id, state, sum(n), sum(placeholders), sum(timed), sum(duration) FROM runs_taskcount WHERE dag_run_id = %s
GROUP BY task_id, state HAVING sum(n) <> 0 OR sum(placeholders) <> 0 OR sum(timed) <> 0 OR sum(duration) <> 0
"""


def _read(sql: str, run_id: int) -> Counts:
    with connection.cursor() as cur:
        cur.execute(sql, [run_id])
        return {(t, s): (int(n), int(p), int(timed), float(d)) for t, s, n, p, timed, d in cur.fetchall()}


def assert_exact(run: DagRun) -> Counts:
    """The live counts are the table's GROUP BY: same (task, state) pairs (none left at zero),
    same counts, the same durations (summed as numeric there, as float here)."""
    table, live = _read(_TABLE_SQL, run.pk), _read(_LIVE_SQL, run.pk)
    assert {k: v[:3] for k, v in live.items()} == {k: v[:3] for k, v in table.items()}
    for key, (*_counts, total) in table.items():
        assert live[key][3] == pytest.approx(total, rel=1e-9, abs=1e-9)
    return table


def step(run: DagRun) -> list[int]:
    executor = InlineExecutor()
    schedule_dag_run(dag_run_id=run.pk, executor=executor)
    return executor.pending


def drive(run: DagRun, *, passes: int = 20) -> None:
    """Scheduler passes and the worker's group path (execute_task_instances), checking the counts after each."""
    for _ in range(passes):
        queued = step(run)
        assert_exact(run)
        if queued:
            execute_task_instances(queued)
            assert_exact(run)
        run.refresh_from_db()
        if run.state != "running":
            return


MAPPED = """
@task(retries=1, retry_delay=timedelta(0))
def add(x):
    if x == 3:
        raise ValueError("three")
    return x + 1

@task
def numbers():
    return list(range(int(open(LENGTH).read())))

@task
def double(y):
    return 2 * y

with DAG("counted") as the_dag:
    add.expand(x=[1, 2, 3, 4, 5])
    double.expand(y=numbers())
"""


def _counted(tmp_path: Path, n: int = 6) -> DagRun:
    (tmp_path / "dags").mkdir(exist_ok=True)
    length = tmp_path / "length"
    length.write_text(str(n))
    return make_run(tmp_path / "dags", MAPPED.replace("LENGTH", repr(str(length))), dag_id="counted")


class LiveCountsTests:
    def test_it_counts_expansion_group_successes_retries_and_failures(self, tmp_path: Path) -> None:
        run = _counted(tmp_path)
        assert_exact(run)
        drive(run)
        table = assert_exact(run)
        assert table[("add", "failed")][:2] == (1, 0) and table[("double", "success")][:3] == (6, 0, 6)

    def test_it_counts_clears_marks_and_re_expansion_shrinking_and_growing(self, tmp_path: Path) -> None:
        run = _counted(tmp_path)
        drive(run)
        clear_task_instances(dag_run=run, task_id="add", map_indexes=[0, 2])
        assert_exact(run)
        mark_task_instances(dag_run=run, task_id="add", map_indexes=[1, 4], state="failed")
        assert_exact(run)
        (tmp_path / "length").write_text("3")
        clear_task_instances(dag_run=run, task_id="numbers", map_indexes=[-1], downstream=True)
        assert_exact(run)
        drive(run)
        assert assert_exact(run)[("double", "removed")][0] == 3
        (tmp_path / "length").write_text("9")
        clear_task_instances(dag_run=run, task_id="numbers", map_indexes=[-1], downstream=True)
        drive(run)
        assert assert_exact(run)[("double", "success")][0] == 9
        clear_dag_run(dag_run=run, only="failed")
        assert_exact(run)
        mark_dag_run(dag_run=run, state="success")
        assert_exact(run)

    def test_it_counts_deferrals_and_the_triggerers_batch_ends(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, CLEAR, dag_id="clear_me")
        TaskInstance.objects.filter(dag_run=run).update(state="running", try_number=1)
        assert deferral.defer_task_instance(ti_id=ti(run, "forever").pk, try_number=1, trigger=TimeDeltaTrigger(60),
                                            method_name="done", kwargs=None, timeout=None)
        assert assert_exact(run)[("forever", "deferred")][0] == 1
        assert deferral.end_from_events([(ti(run, "forever").trigger_id, "skipped")]) == 1
        assert assert_exact(run)[("forever", "skipped")][0] == 1
        TaskInstance.objects.filter(dag_run=run).update(state="running", try_number=2)
        deferral.defer_task_instance(ti_id=ti(run, "forever").pk, try_number=2, trigger=TimeDeltaTrigger(60),
                                     method_name="done", kwargs=None, timeout=timedelta(seconds=-1))
        deferral.time_out_deferrals()
        assert_exact(run)

    def test_it_counts_raw_sql_and_drops_the_counts_of_a_deleted_run(self, tmp_path: Path) -> None:
        run = _counted(tmp_path)
        with connection.cursor() as cur:
            cur.execute("UPDATE runs_taskinstance SET state = 'success', duration = 1.5 WHERE dag_run_id = %s", [run.pk])
            cur.execute("DELETE FROM runs_taskinstance WHERE dag_run_id = %s AND task_id = 'numbers'", [run.pk])
        assert assert_exact(run)[("add", "success")] == (1, 1, 0, 0.0)
        run.delete()
        assert not TaskCount.objects.filter(dag_run_id=run.pk).exists()

    def test_it_writes_nothing_for_an_update_that_keeps_states_and_durations(self, tmp_path: Path) -> None:
        run = _counted(tmp_path)
        before = TaskCount.objects.count()
        TaskInstance.objects.filter(dag_run=run).update(heartbeat_at=timezone.now(), hostname="h")
        assert TaskCount.objects.count() == before

    def test_it_compacts_a_run_to_one_row_per_task_and_state(self, tmp_path: Path) -> None:
        run = _counted(tmp_path)
        drive(run)
        # the run's end compacted them; a clear reopens it and appends its differences
        assert TaskCount.objects.filter(dag_run_id=run.pk).count() == len(assert_exact(run))
        clear_task_instances(dag_run=run, task_id="double", map_indexes=[0, 1, 2])
        mark_task_instances(dag_run=run, task_id="double", map_indexes=[0], state="failed")
        assert TaskCount.objects.filter(dag_run_id=run.pk).count() > len(assert_exact(run))
        assert summaries.compact(run.pk)
        assert TaskCount.objects.filter(dag_run_id=run.pk).count() == len(assert_exact(run))

    def test_it_reads_a_reopened_run_from_its_live_counts(self, tmp_path: Path) -> None:
        run = _counted(tmp_path)
        drive(run)
        run.refresh_from_db()
        assert run.state_summary is not None
        clear_task_instances(dag_run=run, task_id="double", map_indexes=[1])
        run.refresh_from_db()
        assert run.state_summary is None
        with CaptureQueriesContext(connection) as queries:
            cells = grid_cells([run])
        assert not [q for q in queries.captured_queries if "runs_taskinstance" in q["sql"]]
        assert cells[(run.pk, "double")].counts == {"success": 5, "none": 1}


class LiveReadTests:
    def _big(self, tmp_path: Path, n: int) -> DagRun:
        run = _counted(tmp_path)
        with connection.cursor() as cur:
            cur.execute("""INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, state, try_number, max_tries,
                                  start_date, end_date, duration, hostname, keep_unchanged, updated_at)
                           SELECT %s, 'double', i, CASE WHEN i %% 3 = 0 THEN 'running' ELSE 'success' END, 1, 0,
                                  now() - make_interval(secs => i), CASE WHEN i %% 3 = 0 THEN NULL ELSE now() END,
                                  CASE WHEN i %% 3 = 0 THEN NULL ELSE i END, '', false, now()
                           FROM generate_series(0, %s - 1) AS i""", [run.pk, n])
        return run

    def test_it_reads_a_live_runs_grid_run_view_and_panel_without_aggregating_instances(self, tmp_path: Path) -> None:
        run = self._big(tmp_path, 3000)
        with CaptureQueriesContext(connection) as queries:
            cells = grid_cells([run])
            whole = run_summary(run)
        assert not [q for q in queries.captured_queries if "runs_taskinstance" in q["sql"]]
        assert len(queries.captured_queries) == 2  # the counts, once for each
        assert cells[(run.pk, "double")].counts == {"success": 2000, "running": 1000, "none": 1}  # the -1 placeholder
        assert whole.by_task["double"] == {"success": 2000, "running": 1000, "none": 1}
        panel = mapped_summary(run, "double")
        with connection.cursor() as cur:
            cur.execute("SELECT min(start_date), max(end_date), sum(duration) FROM runs_taskinstance WHERE dag_run_id = %s "
                        "AND task_id = 'double' AND map_index >= 0", [run.pk])
            first, last, total = cur.fetchone()
        assert (panel.first_start, panel.last_end) == (first, last)
        assert panel.total_duration == pytest.approx(total)

    def test_it_refreshes_a_live_runs_grid_without_reading_instances_at_any_size(self, tmp_path: Path,
                                                                                   operator_client: Any) -> None:
        run = self._big(tmp_path, 100)
        sql: list[list[str]] = []
        for extra in (0, 5000):
            with connection.cursor() as cur:
                cur.execute("""INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, state, try_number, max_tries,
                                      hostname, keep_unchanged, updated_at)
                               SELECT %s, 'add', i, 'queued', 0, 0, '', false, now() FROM generate_series(100, 99 + %s) AS i""",
                            [run.pk, extra])
            with CaptureQueriesContext(connection) as queries:
                response = operator_client.get("/dags/counted/grid/", HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="grid-body")
            assert response.status_code == 200
            sql.append([q["sql"] for q in queries.captured_queries])
        assert len(sql[0]) == len(sql[1])
        assert not [q for q in sql[1] if "runs_taskinstance" in q]

    def test_it_probes_the_span_through_indexes(self, tmp_path: Path) -> None:
        run = self._big(tmp_path, 3000)
        with connection.cursor() as cur:
            cur.execute("ANALYZE runs_taskinstance")
            cur.execute("EXPLAIN " + summaries._SPAN_SQL, {"run": run.pk, "task": "double"})
            plan = "\n".join(r[0] for r in cur.fetchall())
        assert "ti_run_task_start" in plan and "ti_run_task_end" in plan and "Seq Scan" not in plan


class ConcurrencyTests:
    def test_it_stays_exact_under_concurrent_writers_and_compactions(self, tmp_path: Path) -> None:
        run = _counted(tmp_path)
        with connection.cursor() as cur:
            cur.execute("""INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, state, try_number, max_tries,
                                  hostname, keep_unchanged, updated_at)
                           SELECT %s, 'double', i, 'scheduled', 0, 0, '', false, now() FROM generate_series(0, 1999) AS i""",
                        [run.pk])
        ids = list(TaskInstance.objects.filter(dag_run=run, task_id="double").values_list("pk", flat=True))
        states = ["scheduled", "queued", "running", "success", "failed", "up_for_retry"]
        errors: list[BaseException] = []
        stop = threading.Event()

        def writer(seed: int) -> None:
            rnd = random.Random(seed)
            try:
                for _ in range(150):
                    old, new = rnd.sample(states, 2)
                    some = rnd.sample(ids, rnd.choice([1, 5, 50]))
                    with connections["default"].cursor() as cur:
                        # compare-and-swap, as the worker's and the scheduler's updates are
                        cur.execute("UPDATE runs_taskinstance SET state = %s, duration = %s WHERE id = ANY(%s) AND state = %s",
                                    [new, rnd.choice([None, rnd.random() * 10]), some, old])
            except BaseException as e:  # noqa: BLE001 - handed to the test thread
                errors.append(e)
            finally:
                connections.close_all()

        compactions: list[bool] = []

        def compactor() -> None:
            try:
                while not stop.is_set():
                    compactions.append(summaries.compact(run.pk))
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
        compacting = threading.Thread(target=compactor)
        compacting.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        compacting.join()
        assert not errors
        table = assert_exact(run)
        assert sum(n for (task, _s), (n, *_r) in table.items() if task == "double") == 2001  # and the placeholder
        assert compactions and len({s for (task, s) in table if task == "double"}) >= 5
        summaries.compact(run.pk)
        assert_exact(run)


def test_it_backfills_counts_in_the_migration_form(tmp_path: Path) -> None:
    """The migration's backfill is the insert trigger's statement over the whole table: run it over
    a run whose counts were dropped and get them back."""
    import importlib  # the migration's module name starts with a digit
    migration: Any = importlib.import_module("runs.migrations.0018_ti_live_counts")
    run = _counted(tmp_path)
    TaskCount.objects.all().delete()
    backfill = migration.COUNT_TRIGGERS.split("-- The runs there are")[1].split("\n", 2)[2]
    with connection.cursor() as cur:
        cur.execute(backfill)
    assert_exact(run)
    assert all(isinstance(d, Decimal) for d in TaskCount.objects.values_list("duration", flat=True))


STATES = ["none", "scheduled", "queued", "running", "success", "failed", "removed"]


class LiveCountsMachine(RuleBasedStateMachine):
    """Random inserts, compare-and-swap updates, clears, deletes and compactions on one run's
    instances; after each, the live counts are the table's GROUP BY."""

    dag_id = "counted"

    def __init__(self) -> None:
        super().__init__()
        self.run = create_dag_run(dag_id=self.dag_id, logical_date=timezone.now())
        self.next_index = 0

    def _sql(self, sql: str, params: list[Any]) -> None:
        with connection.cursor() as cur:
            cur.execute(sql, params)

    @rule(n=st.integers(1, 40), state=st.sampled_from(STATES))
    def expand(self, n: int, state: str) -> None:
        self._sql("""INSERT INTO runs_taskinstance (dag_run_id, task_id, map_index, state, try_number, max_tries, hostname,
                            keep_unchanged, updated_at)
                     SELECT %s, 'double', i, %s, 0, 0, '', false, now() FROM generate_series(%s, %s) AS i""",
                  [self.run.pk, state, self.next_index, self.next_index + n - 1])
        self.next_index += n

    @rule(old=st.sampled_from(STATES), new=st.sampled_from(STATES), every=st.integers(1, 5),
          duration=st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False)))
    def swap(self, old: str, new: str, every: int, duration: float | None) -> None:
        self._sql("UPDATE runs_taskinstance SET state = %s, duration = %s WHERE dag_run_id = %s AND state = %s "
                  "AND map_index %% %s = 0", [new, duration, self.run.pk, old, every])

    @rule(every=st.integers(1, 5))
    def clear(self, every: int) -> None:
        self._sql("UPDATE runs_taskinstance SET state = 'none', duration = NULL WHERE dag_run_id = %s AND map_index %% %s = 0",
                  [self.run.pk, every])

    @rule(every=st.integers(2, 7))
    def delete(self, every: int) -> None:
        self._sql("DELETE FROM runs_taskinstance WHERE dag_run_id = %s AND map_index %% %s = 1", [self.run.pk, every])

    @rule()
    def compact(self) -> None:
        assert summaries.compact(self.run.pk)

    @invariant()
    def counts_are_exact(self) -> None:
        assert_exact(self.run)


def test_it_keeps_exact_counts_under_random_operations(tmp_path: Path) -> None:
    _counted(tmp_path)
    run_state_machine_as_test(LiveCountsMachine, settings=settings(max_examples=15, stateful_step_count=15, deadline=None,
                                                                     suppress_health_check=list(HealthCheck)))
