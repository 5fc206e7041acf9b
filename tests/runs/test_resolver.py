"""The database side of mapping: lengths for the scheduler, items and lazy sequences for workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagsapp.exceptions import MappingError
from runs.models import DagRun, TaskInstance, TaskMap, XCom
from runs.resolver import DbResolver, LazyXComSequence
from tests.runs.factories import data, make_run, set_state

pytestmark = pytest.mark.django_db

SOURCE = """
@task
def make():
    return [1, 2, 3]

@task
def add(x):
    return x + 1

@task
def total(values):
    return sum(values)

with DAG("resolver", params={"n": [1, 2]}) as the_dag:
    total(add.expand(x=make()))
"""


@pytest.fixture
def run(tmp_path: Path) -> DagRun:
    return make_run(tmp_path, SOURCE, dag_id="resolver", conf={"n": [7, 8, 9]})


def push(run: DagRun, task_id: str, map_index: int, value: Any, key: str = "return_value") -> None:
    XCom.objects.create(dag_run=run, task_id=task_id, map_index=map_index, key=key, value=value)


class LazyXComSequenceTests:
    @pytest.fixture
    def seq(self, run: DagRun) -> LazyXComSequence:
        # Pushed out of order, as parallel workers finish.
        for map_index in (3, 0, 4, 1, 2):
            push(run, "add", map_index, f"v{map_index}")
        push(run, "add", 0, "pushed by the task", key="other")
        push(run, "make", -1, [1, 2, 3])
        return LazyXComSequence(run.pk, "add")

    def test_it_counts_without_loading_values_and_counts_once(self, seq: LazyXComSequence, django_assert_num_queries: Any) -> None:
        with django_assert_num_queries(1) as ctx:
            assert len(seq) == 5
            assert len(seq) == 5
        assert "COUNT" in ctx.captured_queries[0]["sql"]

    def test_it_reads_one_item_by_index_in_map_index_order(self, seq: LazyXComSequence, django_assert_num_queries: Any) -> None:
        with django_assert_num_queries(1):
            assert seq[0] == "v0"
        assert seq[3] == "v3"
        assert seq[-1] == "v4"
        assert seq[1:4] == ["v1", "v2", "v3"]

    def test_it_raises_index_error_past_either_end(self, seq: LazyXComSequence) -> None:
        with pytest.raises(IndexError):
            seq[5]
        with pytest.raises(IndexError):
            seq[-6]

    def test_it_iterates_in_map_index_order_a_page_at_a_time(self, seq: LazyXComSequence, monkeypatch: pytest.MonkeyPatch,
                                                           django_assert_num_queries: Any) -> None:
        monkeypatch.setattr(LazyXComSequence, "PAGE", 2)
        # One COUNT (list() asks for the length first), then pages of 2, 2 and 1.
        with django_assert_num_queries(4):
            assert list(seq) == ["v0", "v1", "v2", "v3", "v4"]

    def test_it_supports_what_a_reduce_uses(self, run: DagRun) -> None:
        for map_index, value in enumerate([5, 6, 7]):
            push(run, "add", map_index, value)
        seq = LazyXComSequence(run.pk, "add")

        assert sum(seq) == 18
        assert 6 in seq
        assert seq.index(7) == 2
        assert list(reversed(seq)) == [7, 6, 5]

    def test_it_is_empty_for_a_task_without_results(self, run: DagRun) -> None:
        seq = LazyXComSequence(run.pk, "add")

        assert len(seq) == 0
        assert list(seq) == []


class DbResolverLengthTests:
    def test_it_waits_for_the_length_of_an_unfinished_upstream(self, run: DagRun) -> None:
        assert DbResolver(run, data(run)).xcom_length("make", mapped=False) is None

    def test_it_reads_the_recorded_length(self, run: DagRun) -> None:
        TaskMap.objects.create(dag_run=run, task_id="make", map_index=-1, length=7)

        assert DbResolver(run, data(run)).xcom_length("make", mapped=False) == 7

    def test_it_names_an_upstream_that_succeeded_without_a_length(self, run: DagRun) -> None:
        set_state(run, "make", "success")

        with pytest.raises(MappingError, match="'make' succeeded but recorded no length"):
            DbResolver(run, data(run)).xcom_length("make", mapped=False)

    def test_it_reads_a_length_that_committed_with_the_success_between_its_reads(
            self, run: DagRun, monkeypatch: pytest.MonkeyPatch) -> None:
        # The worker commits the success and the TaskMap together, but the resolver reads the
        # TaskMap and the state in two statements: the commit can land between them.
        read_task_map = DbResolver._task_map

        def then_the_worker_commits(resolver: DbResolver, task_id: str) -> Any:
            found = read_task_map(resolver, task_id)
            if found is None and not TaskMap.objects.filter(dag_run=run, task_id=task_id).exists():
                TaskMap.objects.create(dag_run=run, task_id=task_id, map_index=-1, length=3)
                set_state(run, task_id, "success")
            return found

        monkeypatch.setattr(DbResolver, "_task_map", then_the_worker_commits)

        assert DbResolver(run, data(run)).xcom_length("make", mapped=False) == 3

    def test_it_counts_a_mapped_upstream_once_every_index_finished(self, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add").delete()
        for map_index in range(3):
            TaskInstance.objects.create(dag_run=run, task_id="add", map_index=map_index, state="success")
            push(run, "add", map_index, map_index)
        set_state(run, "add", "running", map_index=2)
        resolver = DbResolver(run, data(run))

        assert resolver.xcom_length("add", mapped=True) is None
        set_state(run, "add", "success", map_index=2)
        assert resolver.xcom_length("add", mapped=True) == 3


class DbResolverValueTests:
    def test_it_reads_one_item_of_a_list_result(self, run: DagRun) -> None:
        push(run, "make", -1, ["a", {"b": 1}, None])
        TaskMap.objects.create(dag_run=run, task_id="make", map_index=-1, length=3)
        resolver = DbResolver(run, data(run))

        assert resolver.xcom_item("make", mapped=False, index=1) == (1, {"b": 1}, {"b": 1})
        assert resolver.xcom_item("make", mapped=False, index=2) == (2, None, None)

    def test_it_reads_one_key_value_pair_of_a_dict_result(self, run: DagRun) -> None:
        push(run, "make", -1, {"eu": [1], "us": 2})
        TaskMap.objects.create(dag_run=run, task_id="make", map_index=-1, length=2, keys=["eu", "us"])

        assert DbResolver(run, data(run)).xcom_item("make", mapped=False, index=0) == ("eu", ("eu", [1]), [1])

    def test_it_hands_a_lazy_sequence_for_a_whole_mapped_result(self, run: DagRun) -> None:
        assert isinstance(DbResolver(run, data(run)).xcom_value("add", mapped=True), LazyXComSequence)

    def test_it_prefers_the_run_conf_over_the_param_default(self, run: DagRun, tmp_path: Path) -> None:
        plain = make_run(tmp_path, SOURCE, dag_id="resolver")

        assert DbResolver(run, data(run)).ref_value("param", "n") == [7, 8, 9]
        assert DbResolver(plain, data(plain)).ref_value("param", "n") == [1, 2]
