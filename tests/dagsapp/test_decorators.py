"""@task and @task_group: parse-time errors that name the user's call, ids, mapped groups."""

from __future__ import annotations

import pytest

from dagsapp.baseoperator import MappedOperator
from dagsapp.dag import DAG
from dagsapp.decorators import task, task_group
from dagsapp.exceptions import UnmappableArgument
from dagsapp.xcom_arg import MappedArgument, PlainXComArg


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def numbers() -> list[int]:
    return [1, 2, 3]


class TaskExpandErrorTests:
    def test_it_needs_something_to_map_over(self) -> None:
        with DAG("errors"), pytest.raises(TypeError, match=r"add\.expand\(\) needs at least one keyword argument to map over"):
            add.expand()

    def test_it_rejects_an_int_to_map_over(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument) as info:
            add.expand(x=1)
        assert "add.expand() got an unexpected type 'int' for keyword argument x" in str(info.value)

    def test_it_rejects_a_string_literal_to_map_over(self) -> None:
        # A string is iterable, but mapping over its characters is never what the author meant.
        with DAG("errors"), pytest.raises(UnmappableArgument, match="unexpected type 'str' for keyword argument x"):
            add.expand(x="abc")

    def test_it_rejects_a_key_given_to_both_partial_and_expand(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument, match="add.expand\\(\\) got keyword argument 'y' that was already given to partial\\(\\)"):
            add.partial(y=1).expand(y=[1])

    def test_it_sends_task_level_arguments_to_partial(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument, match="cannot map over 'retries'.*must go to partial\\(\\)"):
            add.expand(retries=[1])

    def test_it_rejects_an_unknown_keyword(self) -> None:
        with DAG("errors"), pytest.raises(TypeError, match="add.expand\\(\\) got an unexpected keyword argument 'z'"):
            add.expand(z=[1])

    def test_it_rejects_a_missing_required_argument(self) -> None:
        with DAG("errors"), pytest.raises(TypeError, match="add.expand\\(\\) is missing required argument 'x' for add\\(\\)"):
            add.partial().expand(y=[1])

    def test_it_rejects_expand_kwargs_of_a_string(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument, match="add.expand_kwargs\\(\\) expects a list of dicts or an XComArg, not 'str'"):
            add.expand_kwargs("abc")

    def test_it_rejects_expand_kwargs_items_that_are_not_dicts(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument, match="add.expand_kwargs\\(\\) expects a list of dicts, but item 0 is 'int'"):
            add.expand_kwargs([1])

    def test_it_rejects_an_unknown_keyword_in_expand_kwargs(self) -> None:
        with DAG("errors"), pytest.raises(TypeError, match="add.expand_kwargs\\(\\) got an unexpected keyword argument 'z'"):
            add.expand_kwargs([{"x": 1}, {"z": 2}])

    def test_it_rejects_an_unexpected_partial_keyword(self) -> None:
        with DAG("errors"), pytest.raises(TypeError, match="add.partial\\(\\) got an unexpected keyword argument 'q'"):
            add.partial(q=1)

    def test_it_rejects_an_unknown_task_option(self) -> None:
        with pytest.raises(TypeError, match="@task got an unexpected keyword argument 'retires'"):
            task(retires=2)(lambda: None)

    def test_it_rejects_a_wrong_call_naming_the_function(self) -> None:
        with DAG("errors"), pytest.raises(TypeError, match="^add\\(\\): "):
            add(1, 2, 3)

    def test_it_must_be_called_inside_a_dag(self) -> None:
        with pytest.raises(RuntimeError, match="task 'add' must be called inside a DAG"):
            add(1)

    def test_it_leaves_the_dag_unchanged_after_an_error(self) -> None:
        with DAG("errors") as dag:
            with pytest.raises(UnmappableArgument):
                add.expand(x=1)
            add.expand(x=[1])
        assert dag.task_ids == ["add"]


class TriggerRuleAlwaysTests:
    """Airflow refuses a task-generated mapping under trigger rule 'always': the task would run
    (and expand) before the upstream that produces its input has a result."""

    def test_it_rejects_expand_over_an_upstream_result(self) -> None:
        with DAG("always"), pytest.raises(ValueError) as info:
            add.override(trigger_rule="always").expand(x=numbers())
        assert str(info.value) == (
            "add.expand(): task-generated mapping within a task using 'expand' is not allowed with trigger rule 'always'")

    def test_it_rejects_expand_over_a_mapped_or_zipped_result(self) -> None:
        with DAG("always"), pytest.raises(ValueError, match="not allowed with trigger rule 'always'"):
            add.override(trigger_rule="always").partial(y=1).expand(x=numbers().map(lambda v: v * 2))

    def test_it_rejects_expand_kwargs_with_an_upstream_result_inside_a_literal_list(self) -> None:
        with DAG("always"), pytest.raises(ValueError, match=r"add.expand_kwargs\(\): .*'expand_kwargs' is not allowed with trigger rule 'always'"):
            add.override(trigger_rule="always").expand_kwargs([{"x": numbers()}])

    def test_it_allows_always_over_literals(self) -> None:
        with DAG("always"):
            out = add.override(trigger_rule="always").expand(x=[1, 2])
        assert isinstance(out.operator, MappedOperator)

    def test_it_allows_expand_kwargs_over_a_whole_upstream_result_as_airflow_does(self) -> None:
        with DAG("always"):
            out = add.override(trigger_rule="always").expand_kwargs(numbers())
        assert isinstance(out.operator, MappedOperator)


class TaskIdTests:
    def test_it_suffixes_a_second_call(self) -> None:
        with DAG("ids") as dag:
            first = add(1)
            second = add(2)
            third = add.expand(x=[1])
        assert [first.operator.task_id, second.operator.task_id, third.operator.task_id] == ["add", "add__1", "add__2"]
        assert dag.task_ids == ["add", "add__1", "add__2"]

    def test_it_uses_an_override_task_id(self) -> None:
        with DAG("ids") as dag:
            add.override(task_id="plus")(1)
        assert dag.task_ids == ["plus"]

    def test_it_prefixes_ids_in_a_task_group(self) -> None:
        @task_group
        def pipeline() -> None:
            add(1)
            add(2)

        with DAG("ids") as dag:
            pipeline()
            pipeline()
        assert dag.task_ids == ["pipeline.add", "pipeline.add__1", "pipeline__1.add", "pipeline__1.add__1"]


class TaskDependencyTests:
    def test_it_makes_an_xcom_argument_an_upstream(self) -> None:
        with DAG("deps") as dag:
            add(numbers())
        assert dag.get_task("add").upstream_task_ids == {"numbers"}

    def test_it_finds_xcom_arguments_nested_in_containers(self) -> None:
        with DAG("deps") as dag:
            add.partial(y={"n": [numbers()]}).expand(x=[1])
        assert dag.get_task("add").upstream_task_ids == {"numbers"}

    def test_it_makes_the_mapped_over_task_an_upstream(self) -> None:
        with DAG("deps") as dag:
            nums = numbers()
            add.expand(x=nums.map(lambda n: n + 1))
        mapped = dag.get_task("add")
        assert isinstance(mapped, MappedOperator)
        assert mapped.upstream_task_ids == {"numbers"}


class MappedTaskGroupTests:
    def test_it_passes_mapped_arguments_into_the_group_function(self) -> None:
        received: dict[str, object] = {}

        @task_group
        def per_file(path: str, mode: str) -> PlainXComArg:
            received.update(path=path, mode=mode)
            return add(path)

        with DAG("groups") as dag:
            per_file.partial(mode="fast").expand(path=["a", "b"])
        assert isinstance(received["path"], MappedArgument)
        assert received["mode"] == "fast"
        assert dag.task_groups["per_file"].is_mapped
        assert dag.get_task("per_file.add").produces_many

    def test_it_waits_for_what_its_expand_input_reads(self) -> None:
        @task_group
        def per_number(n: int) -> None:
            add(add(n))

        with DAG("groups") as dag:
            per_number.expand(n=numbers())
        assert dag.get_task("per_number.add").upstream_task_ids == {"numbers"}
        assert dag.get_task("per_number.add__1").upstream_task_ids == {"per_number.add"}

    def test_it_accepts_an_expand_inside_a_mapped_group_as_a_second_mapping_level(self) -> None:
        # Refused until nested mapping (issue 9): Airflow refuses it too (#29339).
        @task_group
        def outer(n: int) -> None:
            add.expand(x=[1, 2])

        with DAG("groups") as dag:
            outer.expand(n=[1])
        assert dag.get_task("outer.add").mapping_levels() == ["outer", "outer.add"]

    def test_it_accepts_a_mapped_group_inside_a_mapped_group_over_the_outer_argument(self) -> None:
        @task_group
        def outer(items: list[int]) -> None:
            @task_group
            def inner(x: int) -> None:
                add(x)

            inner.expand(x=items)

        with DAG("groups") as dag:
            outer.expand(items=[[1, 2], [3]])
        assert dag.get_task("outer.inner.add").mapping_levels() == ["outer", "outer.inner"]

    def test_it_rejects_a_key_given_to_both_partial_and_expand(self) -> None:
        @task_group
        def grp(n: int) -> None:
            add(n)

        with DAG("groups"), pytest.raises(UnmappableArgument, match="grp.expand\\(\\) got keyword argument 'n' that was already given to partial\\(\\)"):
            grp.partial(n=1).expand(n=[1])
