"""serialize_dag: the JSON the scheduler and the web pages read instead of the DAG file."""

from __future__ import annotations

import json

from dagsapp.dag import DAG
from dagsapp.decorators import task, task_group
from dagsapp.operators import BashOperator, EmptyOperator
from dagsapp.serialization import dag_hash, serialize_dag
from dagsapp.xcom_arg import ParamRef


@task
def make() -> list[int]:
    return [1, 2, 3]


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def show(v: int) -> int:
    return v


def _pipeline(*, extra: bool = False) -> DAG:
    with DAG("pipeline") as the_dag:
        start = EmptyOperator(task_id="start")
        nums = make()
        start >> nums
        add.expand(x=nums)
        if extra:
            EmptyOperator(task_id="extra")
    return the_dag


class SerializeDagTests:
    def test_it_orders_tasks_topologically_with_definition_order_ties(self) -> None:
        with DAG("order") as the_dag:
            report = EmptyOperator(task_id="report")
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            [a, b] >> report
            EmptyOperator(task_id="lonely")
        assert serialize_dag(the_dag)["task_order"] == ["a", "b", "report", "lonely"]

    def test_it_is_json(self) -> None:
        data = serialize_dag(_pipeline())
        assert json.loads(json.dumps(data)) == data

    def test_it_describes_an_expand_over_literals(self) -> None:
        with DAG("mapped") as the_dag:
            add.partial(y=1).expand(x=[1, 2, 3])
            BashOperator.partial(task_id="b").expand_kwargs([{"bash_command": "true"}])
        tasks = serialize_dag(the_dag)["tasks"]
        assert tasks["add"]["is_mapped"] is True
        assert tasks["add"]["mapping"] == {
            "kind": "expand",
            "input": {"type": "dict_of_lists", "args": {"x": {"t": "literal", "length": 3, "items": [1, 2, 3]}}, "order": ["x"]},
        }
        assert tasks["b"]["mapping"]["kind"] == "expand_kwargs"
        assert tasks["b"]["mapping"]["input"] == {
            "type": "list_of_dicts", "source": {"t": "literal", "length": 1, "items": [{"bash_command": "true"}]},
        }
        assert tasks["b"]["operator"] == "BashOperator"

    def test_it_marks_an_unmapped_task_whose_result_is_mapped_over(self) -> None:
        tasks = serialize_dag(_pipeline())["tasks"]
        assert tasks["make"]["feeds_mapping"] is True
        assert tasks["make"]["feeds_mapping_limits"] == [None]
        assert tasks["start"]["feeds_mapping"] is False
        assert tasks["add"]["feeds_mapping"] is False
        assert tasks["add"]["mapping"]["input"]["args"]["x"] == {"t": "xcom", "task_id": "make", "key": "return_value", "mapped": False}

    def test_it_does_not_mark_a_mapped_upstream_as_feeding_a_mapping(self) -> None:
        with DAG("chain") as the_dag:
            first = add.expand(x=[1, 2])
            show.expand(v=first)
        tasks = serialize_dag(the_dag)["tasks"]
        assert tasks["add"]["feeds_mapping"] is False
        assert tasks["show"]["mapping"]["input"]["args"]["v"]["mapped"] is True

    def test_it_records_the_mapping_limit_of_each_consumer(self) -> None:
        with DAG("limits") as the_dag:
            nums = make()
            add.partial(max_map_length=5).expand(x=nums)
            show.expand(v=nums.map(str))
        assert serialize_dag(the_dag)["tasks"]["make"]["feeds_mapping_limits"] == [5, None]

    def test_it_describes_tasks_of_a_mapped_task_group(self) -> None:
        @task_group
        def per_number(n: int) -> None:
            show(add(n))

        with DAG("groups") as the_dag:
            per_number.expand(n=[1, 2, 3])
            EmptyOperator(task_id="after")
        data = serialize_dag(the_dag)
        first, second = data["tasks"]["per_number.add"], data["tasks"]["per_number.show"]
        assert first["mapping"] == {
            "kind": "group", "group_id": "per_number",
            "input": {"type": "dict_of_lists", "args": {"n": {"t": "literal", "length": 3, "items": [1, 2, 3]}}, "order": ["n"]},
        }
        assert second["mapping"]["kind"] == "group"
        assert first["produces_many"] is True and second["produces_many"] is True
        assert first["is_mapped"] is False
        assert first["same_index_upstream"] == []
        assert second["same_index_upstream"] == ["per_number.add"]
        assert second["label"] == "show"
        assert second["group_id"] == "per_number"
        assert data["tasks"]["after"]["produces_many"] is False
        assert data["task_groups"]["per_number"]["is_mapped"] is True
        assert data["root_children"] == [{"type": "group", "id": "per_number"}, {"type": "task", "id": "after"}]

    def test_it_records_a_param_ref_source(self) -> None:
        with DAG("params", params={"files": ["a"]}) as the_dag:
            show.expand(v=ParamRef("files"))
        data = serialize_dag(the_dag)
        assert data["params"] == {"files": ["a"]}
        assert data["tasks"]["show"]["mapping"]["input"]["args"]["v"] == {"t": "param", "key": "files"}


class DagHashTests:
    def test_it_is_stable_for_the_same_dag(self) -> None:
        assert dag_hash(serialize_dag(_pipeline())) == dag_hash(serialize_dag(_pipeline()))

    def test_it_changes_when_a_task_is_added(self) -> None:
        assert dag_hash(serialize_dag(_pipeline())) != dag_hash(serialize_dag(_pipeline(extra=True)))

    def test_it_changes_when_a_dependency_changes(self) -> None:
        with DAG("pipeline") as one:
            a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        with DAG("pipeline") as two:
            c, d = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
            c >> d
        assert (a, b) != (c, d)
        assert dag_hash(serialize_dag(one)) != dag_hash(serialize_dag(two))


class NestedMappingSerializationTests:
    """Nested mapping (issue 9): each level's input is stored with what it reads scoped to the
    levels it shares, so the scheduler expands an outer index from that index's own results."""

    def _dag(self) -> DAG:
        @task
        def sites() -> list[str]:
            return ["a", "b"]

        @task
        def pages(site: str) -> list[str]:
            return [site]

        @task
        def fetch(page: str) -> str:
            return page

        @task
        def total(values: list[str]) -> int:
            return len(values)

        @task_group
        def crawl(site: str) -> object:
            return total(fetch.expand(page=pages(site)))

        with DAG("nested") as dag:
            crawl.expand(site=sites())
        return dag

    def test_it_scopes_an_inner_expand_to_the_outer_index_of_the_group(self) -> None:
        data = serialize_dag(self._dag())
        fetch = data["tasks"]["crawl.fetch"]
        assert data.get("nested") is True
        assert [lv["id"] for lv in fetch["levels"]] == ["crawl", "crawl.fetch"]
        inner = fetch["levels"][1]["input"]
        assert inner["type"] == "dict_of_lists"
        # pages' result at the instance's own index of crawl: one list, not one item per index.
        assert inner["args"]["page"] == {"t": "xcom", "task_id": "crawl.pages", "key": "return_value", "mapped": False, "scope": 1}
        assert data["tasks"]["crawl.pages"]["feeds_mapping"] is True
        assert data["tasks"]["crawl.total"]["same_index_upstream"] == ["crawl.fetch"]

    def test_it_keeps_the_hash_of_a_dag_without_nesting(self) -> None:
        @task
        def one(x: int) -> int:
            return x

        @task_group
        def flat(x: int) -> None:
            one(x)

        with DAG("flat") as dag:
            flat.expand(x=[1, 2])
        data = serialize_dag(dag)
        assert "nested" not in data and "levels" not in data["tasks"]["flat.one"]
