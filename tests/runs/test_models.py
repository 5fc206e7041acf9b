"""The partial indexes' predicates name states as literals (models and migrations): they must be the enums' values."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.apps.registry import Apps
from django.db import models
from django.db.migrations.loader import MigrationLoader

from runs.execution.execute import WAITING_STATES
from runs.models import DagRun, DagRunState, TaskInstance, TaskInstanceState
from runs.models.taskinstance import UNFINISHED_STATES

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
