"""The partial indexes' predicates name states as literals (models and migrations): they must be the enums' values."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from django.apps.registry import Apps
from django.db import IntegrityError, OperationalError, connection, connections, models, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from runs.execution.execute import WAITING_STATES
from runs.models import DagRun, DagRunState, TaskInstance, TaskInstanceState
from runs.models.taskinstance import UNFINISHED_STATES
from runs.services import create_dag_run
from tests.runs.factories import make_run

S = TaskInstanceState


def state_predicates(model: Any) -> dict[str, set[str]]:
    """index name -> the states of its ``state__in`` condition."""
    out = {}
    for index in model._meta.indexes:
        if isinstance(index.condition, models.Q):
            for child in index.condition.children:
                if isinstance(child, tuple) and child[0] == "state__in":
                    out[index.name] = {str(v) for v in child[1]}
    return out


@cache
def migrated_apps() -> Apps:
    # No connection: the migration files alone, whatever the database has applied.
    return MigrationLoader(None, ignore_no_migrations=True).project_state().apps


def migrated(model: type[models.Model]) -> Any:
    """The model as the migrations build it (their own literals), not as models.py declares it."""
    return migrated_apps().get_model("runs", model.__name__)


class PartialIndexTests:
    def test_it_keeps_the_unfinished_states_in_the_scheduler_index(self) -> None:
        expected = {str(s) for s in UNFINISHED_STATES}
        assert state_predicates(TaskInstance)["ti_run_unfinished_ordered"] == expected
        assert state_predicates(migrated(TaskInstance))["ti_run_unfinished_ordered"] == expected

    def test_it_keeps_the_active_run_states_in_the_run_index(self) -> None:
        expected = {DagRunState.QUEUED.value, DagRunState.RUNNING.value}
        assert state_predicates(DagRun)["dag_run_active"] == expected
        assert state_predicates(migrated(DagRun))["dag_run_active"] == expected

    def test_it_names_only_enum_values_in_every_state_predicate(self) -> None:
        for model, enum in ((TaskInstance, TaskInstanceState), (DagRun, DagRunState)):
            for name, states in {**state_predicates(model), **state_predicates(migrated(model))}.items():
                assert states <= set(enum.values), name

    def test_it_serves_every_waiting_sibling_probe_of_the_success_commit(self) -> None:
        # The success statement reads the highest waiting index per state backwards from this index.
        assert {str(s) for s in WAITING_STATES} <= state_predicates(TaskInstance)["ti_run_unfinished_ordered"]


ONE_TASK = """
@dag(dag_id="fk_dag", start_date=datetime(2024, 1, 1), schedule=None)
def fk_dag():
    EmptyOperator(task_id="only")
fk_dag()
"""


class TaskInstanceRunKeyTests:
    """runs_taskinstance.dag_run_id is checked by statement-level triggers (migration 0017), not
    by PostgreSQL's foreign key, which ran one query per inserted row."""

    def test_it_refuses_an_instance_of_a_run_that_does_not_exist(self, db: None, tmp_path: Path) -> None:
        run = make_run(tmp_path, ONE_TASK, dag_id="fk_dag")
        with pytest.raises(IntegrityError, match="ti_dag_run_exists"), transaction.atomic():
            TaskInstance.objects.bulk_create([TaskInstance(dag_run_id=run.pk, task_id="a", map_index=0),
                                              TaskInstance(dag_run_id=run.pk + 1000, task_id="a", map_index=1)])
        assert not TaskInstance.objects.filter(task_id="a").exists()

    def test_it_refuses_to_delete_a_run_that_still_has_instances_in_sql(self, db: None, tmp_path: Path) -> None:
        run = make_run(tmp_path, ONE_TASK, dag_id="fk_dag")
        with pytest.raises(IntegrityError, match="Task instances still name the run"), transaction.atomic(), \
                connection.cursor() as cur:
            cur.execute("DELETE FROM runs_dagrun WHERE id = %s", [run.pk])
        assert DagRun.objects.filter(pk=run.pk).exists()

    def test_it_deletes_a_run_with_its_instances_through_django(self, db: None, tmp_path: Path) -> None:
        run = make_run(tmp_path, ONE_TASK, dag_id="fk_dag")
        assert TaskInstance.objects.filter(dag_run=run).count() == 1
        run.delete()
        assert not TaskInstance.objects.filter(dag_run_id=run.pk).exists()

    def test_it_refuses_to_move_an_instance_to_another_run(self, db: None, tmp_path: Path) -> None:
        run = make_run(tmp_path, ONE_TASK, dag_id="fk_dag")
        other = create_dag_run(dag_id="fk_dag", logical_date=timezone.now())
        with pytest.raises(IntegrityError, match="cannot move"), transaction.atomic():
            TaskInstance.objects.filter(dag_run=run).update(dag_run=other)

    def test_it_keeps_a_run_from_being_deleted_while_an_insert_naming_it_is_uncommitted(
        self, transactional_db: None, tmp_path: Path,
    ) -> None:
        run = make_run(tmp_path, ONE_TASK, dag_id="fk_dag")
        TaskInstance.objects.filter(dag_run=run).delete()
        with transaction.atomic():
            TaskInstance.objects.create(dag_run=run, task_id="late", map_index=0)
            # Another connection: its delete waits for the insert's FOR KEY SHARE lock on the run.
            other = connections.create_connection("default")
            try:
                with other.cursor() as cur:
                    cur.execute("SET lock_timeout = '300ms'")
                    with pytest.raises(OperationalError, match="lock timeout"):
                        cur.execute("DELETE FROM runs_dagrun WHERE id = %s", [run.pk])
            finally:
                other.close()
        assert TaskInstance.objects.filter(dag_run=run, task_id="late").exists()
