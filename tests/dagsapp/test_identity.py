"""dagsapp.identity: which item each index of a mapped task stands for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dagsapp.dag import DAG
from dagsapp.decorators import task
from dagsapp.exceptions import DagDefinitionError, UnmappableArgument
from dagsapp.identity import combine, expansion_identities, item_identities, value_identity
from dagsapp.operators import BashOperator
from dagsapp.serialization import serialize_dag
from dagsapp.xcom_arg import ParamRef
from tests.dagsapp.conftest import FakeResolver


@task
def make() -> list[Any]:
    return [1, 2, 3]


@task
def show(v: Any, w: Any = None) -> Any:
    return v


class ValueIdentityTests:
    def test_it_ignores_dict_key_order(self) -> None:
        assert value_identity({"a": 1, "b": [1, 2]}) == value_identity({"b": [1, 2], "a": 1})

    def test_it_tells_different_values_apart(self) -> None:
        assert value_identity(1) != value_identity("1")
        assert value_identity([1, 2]) != value_identity([2, 1])

    def test_it_is_short_and_stable(self) -> None:
        assert value_identity("a") == value_identity("a")
        assert len(value_identity({"big": list(range(1000))})) == 16

    def test_it_hashes_values_json_cannot_carry_by_repr(self) -> None:
        assert value_identity({1, 2}) == value_identity({1, 2})


class ItemIdentitiesTests:
    def test_it_hashes_a_lists_items(self) -> None:
        assert item_identities(["a", {"x": 1}]) == [value_identity("a"), value_identity({"x": 1})]

    def test_it_takes_a_dicts_keys(self) -> None:
        assert item_identities({"k1": 1, "k2": 2}) == ["k1", "k2"]

    def test_it_applies_map_key_to_each_item_as_the_task_gets_it(self) -> None:
        assert item_identities([{"id": 7}, {"id": "b"}], map_key=lambda o: o["id"]) == ["7", "b"]
        assert item_identities({"k": 1}, map_key=lambda pair: f"{pair[0]}={pair[1]}") == ["k=1"]

    def test_it_refuses_a_map_key_that_returns_neither_str_nor_int(self) -> None:
        with pytest.raises(TypeError, match=r"add.partial\(map_key=...\) returned 'list' for item 0"):
            item_identities([1], map_key=lambda v: [v], call="add.partial(map_key=...)")


class ExpansionIdentitiesTests:
    def _spec(self, build: Callable[[], Any]) -> Any:
        with DAG("d") as the_dag:
            build()
        return serialize_dag(the_dag)["tasks"]

    def test_it_reads_an_upstream_results_recorded_identities(self) -> None:
        tasks = self._spec(lambda: show.expand(v=make()))
        resolver = FakeResolver(results={"make": [1, 2]}, identities={"make": ["i1", "i2"]})
        assert expansion_identities(tasks["show"]["mapping"]["input"], resolver, consumer="show") == ["i1", "i2"]

    def test_it_prefers_the_consumers_map_key_identities(self) -> None:
        tasks = self._spec(lambda: show.partial(map_key=str).expand(v=make()))
        resolver = FakeResolver(results={"make": [1, 2]}, identities={"make": ["i1", "i2"], "make:show": ["1", "2"]})
        assert expansion_identities(tasks["show"]["mapping"]["input"], resolver, consumer="show") == ["1", "2"]

    def test_it_has_none_where_nothing_was_recorded(self) -> None:
        tasks = self._spec(lambda: show.expand(v=make()))
        resolver = FakeResolver(results={"make": [1, 2]})
        assert expansion_identities(tasks["show"]["mapping"]["input"], resolver, consumer="show") == [None, None]

    def test_it_hashes_literals_and_refs(self) -> None:
        tasks = self._spec(lambda: (show.expand(v=["a", "b"]), show.expand(v=ParamRef("p"))))
        resolver = FakeResolver(refs={("param", "p"): {"x": 1}})
        assert expansion_identities(tasks["show"]["mapping"]["input"], resolver, consumer="show") == [
            value_identity("a"), value_identity("b")]
        assert expansion_identities(tasks["show__1"]["mapping"]["input"], resolver, consumer="show__1") == ["x"]

    def test_it_combines_a_cross_products_keywords_in_product_order(self) -> None:
        tasks = self._spec(lambda: show.expand(v=["a", "b"], w={"k1": 1, "k2": 2}))
        ids = expansion_identities(tasks["show"]["mapping"]["input"], FakeResolver(), consumer="show")
        a, b = value_identity("a"), value_identity("b")
        assert ids == [combine([a, "k1"]), combine([a, "k2"]), combine([b, "k1"]), combine([b, "k2"])]
        assert len(set(ids)) == 4

    def test_it_gives_map_the_source_items_identity_and_concat_its_parts(self) -> None:
        def build() -> None:
            out = make()
            show.expand(v=out.map(lambda v: v * 2))
            show.expand(v=out.concat(["z"]))
        tasks = self._spec(build)
        resolver = FakeResolver(results={"make": [1, 2]}, identities={"make": ["i1", "i2"]})
        assert expansion_identities(tasks["show"]["mapping"]["input"], resolver, consumer="show") == ["i1", "i2"]
        assert expansion_identities(tasks["show__1"]["mapping"]["input"], resolver, consumer="show__1") == [
            "i1", "i2", value_identity("z")]

    def test_it_combines_zipped_inputs(self) -> None:
        tasks = self._spec(lambda: show.expand(v=make().zip(make())))
        resolver = FakeResolver(results={"make": [1, 2], "make__1": [3, 4]},
                                identities={"make": ["i1", "i2"], "make__1": ["j1", "j2"]})
        assert expansion_identities(tasks["show"]["mapping"]["input"], resolver, consumer="show") == [
            combine(["i1", "j1"]), combine(["i2", "j2"])]


class MapKeyTests:
    def test_it_stores_a_literals_map_key_identities_at_parse_time(self) -> None:
        with DAG("d") as the_dag:
            show.partial(map_key=lambda o: o["id"]).expand(v=[{"id": "a"}, {"id": "b"}])
        task_data = serialize_dag(the_dag)["tasks"]["show"]
        assert task_data["map_key"] is True
        assert task_data["mapping"]["input"]["args"]["v"]["identities"] == ["a", "b"]

    def test_it_names_the_consumers_the_producers_worker_applies_map_key_for(self) -> None:
        with DAG("d") as the_dag:
            out = make()
            show.partial(map_key=str).expand(v=out)
            show.expand(v=out)
        tasks = serialize_dag(the_dag)["tasks"]
        assert tasks["make"]["map_key_consumers"] == ["show"]
        assert "map_key" not in tasks["show__1"]

    def test_it_leaves_dags_without_map_key_serialized_as_before(self) -> None:
        with DAG("d") as the_dag:
            show.expand(v=make())
        tasks = serialize_dag(the_dag)["tasks"]
        assert "map_key" not in tasks["show"] and "map_key_consumers" not in tasks["make"]

    def test_it_works_on_classic_operators(self) -> None:
        with DAG("d") as the_dag:
            BashOperator.partial(task_id="echo", map_key=lambda c: c.split()[-1]).expand(bash_command=["echo a", "echo b"])
        spec = serialize_dag(the_dag)["tasks"]["echo"]["mapping"]["input"]["args"]["bash_command"]
        assert spec["identities"] == ["a", "b"]

    def test_it_refuses_a_map_key_that_is_not_callable(self) -> None:
        with DAG("d"), pytest.raises(TypeError, match=r"show.partial\(map_key=...\): map_key must be a callable"):
            show.partial(map_key="id").expand(v=[1])

    def test_it_refuses_map_key_over_several_inputs(self) -> None:
        with DAG("d"), pytest.raises(UnmappableArgument, match=r"show.partial\(map_key=...\): map_key needs exactly one mapped input, got 2"):
            show.partial(map_key=str).expand(v=[1], w=[2])

    def test_it_refuses_map_key_over_a_zip_a_ref_or_a_mapped_result(self) -> None:
        with DAG("d"):
            with pytest.raises(UnmappableArgument, match="not ZipXComArg"):
                show.partial(map_key=str).expand(v=make().zip(make()))
            with pytest.raises(UnmappableArgument, match="not ParamRef"):
                show.partial(map_key=str).expand(v=ParamRef("p"))
            mapped = show.expand(v=[1, 2])
            with pytest.raises(UnmappableArgument, match="results of the mapped task"):
                BashOperator.partial(task_id="b", map_key=str).expand(bash_command=mapped)

    def test_it_reports_a_map_key_that_fails_on_a_literal_when_parsed(self) -> None:
        with DAG("d") as the_dag:
            show.partial(map_key=lambda o: o["id"]).expand(v=[{"no_id": 1}])
        with pytest.raises(DagDefinitionError, match=r"show.partial\(map_key=...\) failed on the literal input"):
            serialize_dag(the_dag)
