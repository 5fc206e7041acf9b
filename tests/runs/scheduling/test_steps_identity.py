"""Item identity in expand_mapped_task: recorded per index, compared on re-expansion, and the
"clear only new, changed and failed" re-expansion that keeps unchanged successes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagsapp.identity import value_identity
from runs.execution.execute import record_task_map
from runs.logs import read_log
from runs.models import DagRun, TaskInstance, TaskMap, XCom
from runs.services import DagRunError, clear_mapped_task, clear_mapped_task_changed, clear_task_instances
from runs.web.queries import ItemChanges, item_changes
from tests.runs.factories import (
    FAILED,
    NONE,
    REMOVED,
    SCHEDULED,
    SUCCESS,
    data,
    expand,
    make_run,
    schedule,
    set_state,
    states,
    ti,
)

pytestmark = pytest.mark.django_db

FROM_UPSTREAM = """
@task
def make():
    return []

@task
def add(x):
    return x

@task
def total(values):
    return len(values)

with DAG("identity") as the_dag:
    total(add{partial}.expand(x=make()))
"""


def _run(tmp_path: Path, partial: str = "") -> DagRun:
    return make_run(tmp_path, FROM_UPSTREAM.replace("{partial}", partial), dag_id="identity")


def record(run: DagRun, value: Any) -> None:
    """What the worker of `make` leaves behind: its result, its TaskMap (identities included), success."""
    XCom.objects.update_or_create(dag_run=run, task_id="make", map_index=-1, key="return_value", defaults={"value": value})
    record_task_map(ti=ti(run, "make"), task=data(run)["tasks"]["make"], value=value)
    set_state(run, "make", SUCCESS, map_index=-1)


def identities(run: DagRun) -> dict[int, str | None]:
    return dict(TaskInstance.objects.filter(dag_run=run, task_id="add").order_by("map_index").values_list("map_index", "item_identity"))


def changes(run: DagRun) -> dict[int, str | None]:
    return dict(TaskInstance.objects.filter(dag_run=run, task_id="add").order_by("map_index").values_list("map_index", "item_change"))


def finish(run: DagRun, by_index: dict[int, str]) -> None:
    """Each index ran once and ended in the given state (a success with its result)."""
    for index, state in by_index.items():
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=index).update(state=state, try_number=1)
        if state == SUCCESS:
            XCom.objects.create(dag_run=run, task_id="add", map_index=index, value=index)


class ItemIdentityAtExpansionTests:
    def test_it_records_each_list_items_identity(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a", {"id": 1}])

        assert expand(run, "add") == 2

        assert identities(run) == {0: value_identity("a"), 1: value_identity({"id": 1})}
        assert changes(run) == {0: None, 1: None}  # a first expansion compares nothing

    def test_it_records_a_dicts_keys(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, {"k1": 1, "k2": 2})

        expand(run, "add")

        assert identities(run) == {0: "k1", 1: "k2"}

    def test_it_records_the_map_key_the_upstreams_worker_applied(self, tmp_path: Path) -> None:
        run = _run(tmp_path, ".partial(map_key=lambda s: s.split(':')[0])")
        record(run, ["k1:old", "k2:old"])

        expand(run, "add")

        assert identities(run) == {0: "k1", 1: "k2"}
        assert TaskMap.objects.get(dag_run=run, task_id="make").identities["add"] == ["k1", "k2"]

    def test_it_leaves_the_identity_unknown_without_recorded_identities(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        TaskMap.objects.create(dag_run=run, task_id="make", map_index=-1, length=2)  # recorded before identities existed
        set_state(run, "make", SUCCESS, map_index=-1)

        assert expand(run, "add") == 2

        assert identities(run) == {0: None, 1: None}


class ReexpansionTests:
    def test_it_marks_each_index_unchanged_changed_or_new(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a", "b", "c"])
        expand(run, "add")
        clear_mapped_task(dag_run=run, task_id="add")
        record(run, ["a", "x", "c", "d"])

        assert expand(run, "add") == 1

        assert changes(run) == {0: "unchanged", 1: "changed", 2: "unchanged", 3: "new"}
        assert identities(run)[1] == value_identity("x")

    def test_it_runs_every_index_again_after_a_full_clear(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a", "b"])
        expand(run, "add")
        finish(run, {0: SUCCESS, 1: SUCCESS})
        clear_mapped_task(dag_run=run, task_id="add")
        record(run, ["a", "x"])

        expand(run, "add")

        assert states(run, "add") == {0: NONE, 1: NONE}

    def test_it_labels_a_changed_index_s_earlier_try_with_its_old_item(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a", "b"])
        expand(run, "add")
        finish(run, {0: SUCCESS, 1: SUCCESS})
        clear_mapped_task(dag_run=run, task_id="add")
        record(run, ["a", "x"])

        expand(run, "add")

        changed = ti(run, "add", 1)
        log, _ = read_log(changed.pk, 1)
        assert f"now stands for item {value_identity('x')}; the tries so far ran item {value_identity('b')}" in log
        unchanged = ti(run, "add", 0)
        assert "Re-expanded" not in read_log(unchanged.pk, 1)[0]


class ClearOnlyNewChangedAndFailedTests:
    def test_it_keeps_unchanged_successes_and_reruns_the_rest(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a", "b", "c", "d"])
        expand(run, "add")
        finish(run, {0: SUCCESS, 1: SUCCESS, 2: FAILED, 3: SUCCESS})

        clear_mapped_task_changed(dag_run=run, task_id="add")
        record(run, ["a", "x", "c", "d", "e"])
        assert expand(run, "add") == 1

        assert states(run, "add") == {0: SUCCESS, 1: NONE, 2: NONE, 3: SUCCESS, 4: SCHEDULED}
        assert changes(run) == {0: "unchanged", 1: "changed", 2: "unchanged", 3: "unchanged", 4: "new"}
        # The kept successes keep their try and result; the changed index starts over.
        assert ti(run, "add", 0).try_number == 1
        assert sorted(XCom.objects.filter(dag_run=run, task_id="add").values_list("map_index", flat=True)) == [0, 3]
        assert ti(run, "add", 1).max_tries == 1  # its next try is try 2, with the task's retries (0) left

    def test_it_removes_indexes_past_the_new_length(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a", "b", "c"])
        expand(run, "add")
        finish(run, {0: SUCCESS, 1: SUCCESS, 2: SUCCESS})

        clear_mapped_task_changed(dag_run=run, task_id="add")
        record(run, ["a", "b"])
        expand(run, "add")

        assert states(run, "add") == {0: SUCCESS, 1: SUCCESS, 2: REMOVED}
        assert item_changes(run, "add") == ItemChanges(unchanged=2, new=0, changed=0, removed=1)

    def test_it_waits_for_a_cleared_upstream_before_comparing(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a", "b"])
        expand(run, "add")
        finish(run, {0: SUCCESS, 1: SUCCESS})
        clear_task_instances(dag_run=run, task_id="make", map_indexes=[-1])

        clear_mapped_task_changed(dag_run=run, task_id="add")

        assert expand(run, "add") == 0
        assert states(run, "add") == {-1: NONE, 0: SUCCESS, 1: SUCCESS}
        record(run, ["b", "b"])
        expand(run, "add")
        assert states(run, "add") == {0: NONE, 1: SUCCESS}

    def test_it_clears_what_runs_again_anyway_at_once_so_the_downstream_waits(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a", "b"])
        expand(run, "add")
        finish(run, {0: SUCCESS, 1: FAILED})
        clear_task_instances(dag_run=run, task_id="make", map_indexes=[-1])

        assert clear_mapped_task_changed(dag_run=run, task_id="add", downstream=True) == 2  # add[1] and total

        assert states(run, "add") == {-1: NONE, 0: SUCCESS, 1: NONE}
        schedule(run)
        # A failed index left as it was would have made `total` upstream_failed before the expansion.
        assert states(run, "total") == {-1: NONE}
        assert states(run, "add") == {-1: NONE, 0: SUCCESS, 1: NONE}

    def test_it_clears_the_downstream_when_asked(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a"])
        expand(run, "add")
        finish(run, {0: SUCCESS})
        set_state(run, "total", SUCCESS)

        clear_mapped_task_changed(dag_run=run, task_id="add", downstream=True)

        assert states(run, "total") == {-1: NONE}
        assert ti(run, "add").keep_unchanged

    def test_it_refuses_an_unmapped_task(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        with pytest.raises(DagRunError, match="'total' is not a mapped task"):
            clear_mapped_task_changed(dag_run=run, task_id="total")


class ItemChangesTests:
    def test_it_reads_as_the_panel_shows_it(self) -> None:
        assert str(ItemChanges(unchanged=12, new=3, changed=1, removed=2)) == "12 unchanged, 3 new, 1 changed, 2 removed"

    def test_it_says_nothing_before_a_reexpansion(self, tmp_path: Path) -> None:
        run = _run(tmp_path)
        record(run, ["a"])
        expand(run, "add")
        assert not item_changes(run, "add").reexpanded
