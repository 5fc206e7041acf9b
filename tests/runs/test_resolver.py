"""The database side of mapping: lengths for the scheduler, items and lazy sequences for workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from dagsapp.exceptions import MappingError
from dagsapp.expandinput import NotResolvableHere, expand_input_length, resolve_spec
from dagsapp.serialization import dag_hash, serialize_dag
from dagsapp.xcom_arg import ResolveScope
from runs.execution.prefetch import prefetch_batch, single_upstream
from runs.models import DagRun, SerializedDag, TaskInstance, TaskMap, Variable, XCom
from runs.resolver import DbResolver, LazyXComSequence
from runs.scheduling.instance_names import BatchResolver
from tests.dagsapp.conftest import FakeResolver
from tests.dagsapp.mapping_cases import CASES, CONSUMER, MappingCase
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


def _stored_run(case: MappingCase) -> DagRun:
    """A run of the case's DAG with its upstreams' results recorded as a worker records them."""
    serialized = serialize_dag(case.dag())
    version = SerializedDag.objects.create(dag_id=serialized["dag_id"], dag_hash=dag_hash(serialized), data=serialized)
    run = DagRun.objects.create(dag_id=serialized["dag_id"], run_id=f"r_{case.name}", logical_date=timezone.now(),
                                serialized_dag=version, state="running")
    for task_id, value in case.results.items():
        TaskInstance.objects.create(dag_run=run, task_id=task_id, map_index=-1, state="success")
        push(run, task_id, -1, value)
        TaskMap.objects.create(dag_run=run, task_id=task_id, map_index=-1, length=len(value),
                               keys=list(value) if isinstance(value, dict) else None)
    for task_id, values in case.mapped.items():
        for i, value in enumerate(values):
            TaskInstance.objects.create(dag_run=run, task_id=task_id, map_index=i, state="success")
            push(run, task_id, i, value)
    for key, value in case.variables.items():
        Variable.objects.create(key=key, val=value)
    for i in range(case.length):
        TaskInstance.objects.create(dag_run=run, task_id=CONSUMER, map_index=i, state="queued")
    return run


def _worker(case: MappingCase, resolver: Any, map_index: int) -> tuple[Any, Any, Any]:
    _kwargs, info = case.dag().task_dict[CONSUMER].expand_input.resolve(ResolveScope(resolver), map_index)
    return info.key, info.kwargs, info.value


# Where the batch prefetch's SQL item expression (item_sql) answers: one upstream result mapped over.
READ_BY_ITEM_SQL = {"xcom_list", "xcom_dict", "expand_kwargs_xcom"}


class ItemOfAMappedInputInTheDatabaseTests:
    @pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
    def test_it_is_the_same_on_every_path(self, case: MappingCase, django_assert_num_queries: Any) -> None:
        run = _stored_run(case)
        stored = SerializedDag.objects.get(pk=run.serialized_dag_id).dag_data()  # as stored: through jsonb
        task = stored["tasks"][CONSUMER]
        assert task["mapping"] is not None
        spec = task["mapping"]["input"]
        fake = FakeResolver(results=case.results, mapped=case.mapped, refs=case.refs)
        assert expand_input_length(spec, DbResolver(run, stored)) == case.length
        ids = dict(TaskInstance.objects.filter(dag_run=run, task_id=CONSUMER).values_list("map_index", "pk"))
        prefetch = prefetch_batch(list(ids.values()), lambda _run_id: stored)
        assert (single_upstream(dict(task)) is not None) == (case.name in READ_BY_ITEM_SQL)
        for i in range(case.length):
            expected = _worker(case, fake, i)
            # The worker, one item read per instance ((value -> key) in SQL).
            assert _worker(case, DbResolver(run, stored, prefetch_index=i), i) == expected, f"map_index {i}"
            # The scheduler naming instances from the serialized DAG.
            if case.needs_user_code:
                with pytest.raises(NotResolvableHere):
                    resolve_spec(spec, BatchResolver(DbResolver(run, stored)), i)
            else:
                info = resolve_spec(spec, BatchResolver(DbResolver(run, stored)), i)
                assert (info.key, info.kwargs, info.value) == expected, f"map_index {i}"
            # The worker of a batch, given the item read by item_sql for the whole batch: no query left.
            preloaded = prefetch.get(ids[i])
            if case.name in READ_BY_ITEM_SQL:
                assert preloaded is not None
                resolver = DbResolver(run, stored, prefetch_index=i)
                resolver.preload(preloaded.upstream, preloaded.task_map, i, preloaded.item)
                with django_assert_num_queries(0):
                    assert _worker(case, resolver, i) == expected, f"map_index {i}"
            else:
                assert preloaded is None


class DbResolverIdentityTests:
    def test_it_reads_the_identities_recorded_with_the_task_map(self, run: DagRun) -> None:
        TaskMap.objects.create(dag_run=run, task_id="make", map_index=-1, length=2, identities={"": ["h1", "h2"], "add": ["k1", "k2"]})
        resolver = DbResolver(run, data(run))

        assert resolver.xcom_identities("make", mapped=False, consumer="add") == ["k1", "k2"]
        assert resolver.xcom_identities("make", mapped=False, consumer="other") == ["h1", "h2"]

    def test_it_takes_a_dicts_keys(self, run: DagRun) -> None:
        TaskMap.objects.create(dag_run=run, task_id="make", map_index=-1, length=2, keys=["eu", "us"], identities={})

        assert DbResolver(run, data(run)).xcom_identities("make", mapped=False, consumer="add") == ["eu", "us"]

    def test_it_knows_none_without_a_task_map_or_recorded_identities(self, run: DagRun) -> None:
        resolver = DbResolver(run, data(run))
        assert resolver.xcom_identities("make", mapped=False, consumer="add") is None
        TaskMap.objects.create(dag_run=run, task_id="make", map_index=-1, length=2)
        assert resolver.xcom_identities("make", mapped=False, consumer="add") is None

    def test_it_hashes_a_mapped_tasks_results_in_map_index_order(self, run: DagRun) -> None:
        for map_index, value in ((1, {"b": 2, "a": 1}), (0, "x")):
            TaskInstance.objects.create(dag_run=run, task_id="add", map_index=map_index, state="success")
            push(run, "add", map_index, value)

        ids = DbResolver(run, data(run)).xcom_identities("add", mapped=True, consumer="total")

        assert ids is not None and len(ids) == 2 and all(len(i or "") == 16 for i in ids)
        XCom.objects.filter(dag_run=run, task_id="add", map_index=1).update(value={"a": 1, "b": 2})  # keys in another order
        assert DbResolver(run, data(run)).xcom_identities("add", mapped=True, consumer="total") == ids
