"""Classic operators: partial()/expand() errors and dependencies implied by arguments."""

from __future__ import annotations

import pytest

from dagsapp.baseoperator import MappedOperator
from dagsapp.dag import DAG
from dagsapp.decorators import task
from dagsapp.exceptions import UnmappableArgument
from dagsapp.operators import BashOperator, EmptyOperator, PythonOperator


@task
def command() -> str:
    return "echo hi"


class OperatorPartialTests:
    def test_it_rejects_an_unknown_keyword_to_map_over(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument, match="BashOperator.expand\\(\\) got an unexpected keyword argument 'foo' for BashOperator"):
            BashOperator.partial(task_id="b").expand(foo=[1])

    def test_it_rejects_an_unknown_keyword_in_expand_kwargs(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument, match="BashOperator.expand_kwargs\\(\\) got an unexpected keyword argument 'foo'"):
            BashOperator.partial(task_id="b").expand_kwargs([{"foo": 1}])

    def test_it_rejects_an_unexpected_partial_keyword(self) -> None:
        with DAG("errors"), pytest.raises(TypeError, match="BashOperator.partial\\(\\) got an unexpected keyword argument 'foo'"):
            BashOperator.partial(task_id="b", foo=1)

    def test_it_needs_a_task_id(self) -> None:
        with DAG("errors"), pytest.raises(TypeError, match="BashOperator.partial\\(\\) needs a task_id"):
            BashOperator.partial(bash_command="true")

    def test_it_sends_task_level_arguments_to_partial(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument, match="BashOperator.expand\\(\\) cannot map over 'retries'"):
            BashOperator.partial(task_id="b").expand(retries=[1, 2])

    def test_it_rejects_a_key_given_to_both_partial_and_expand(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument, match="'bash_command' that was already given to partial\\(\\)"):
            BashOperator.partial(task_id="b", bash_command="true").expand(bash_command=["false"])

    def test_it_rejects_an_int_to_map_over(self) -> None:
        with DAG("errors"), pytest.raises(UnmappableArgument, match="BashOperator.expand\\(\\) got an unexpected type 'int' for keyword argument bash_command"):
            BashOperator.partial(task_id="b").expand(bash_command=1)

    def test_it_rejects_an_invalid_trigger_rule(self) -> None:
        with DAG("errors"), pytest.raises(ValueError, match="'sometimes' is not a trigger rule"):
            BashOperator.partial(task_id="b", trigger_rule="sometimes")

    def test_it_can_be_expanded_only_once(self) -> None:
        with DAG("errors"):
            partial = BashOperator.partial(task_id="b")
            partial.expand(bash_command=["true"])
            with pytest.raises(TypeError, match="a partial\\(\\) can be expanded only once"):
                partial.expand(bash_command=["true"])

    def test_it_builds_a_mapped_operator_with_task_level_arguments(self) -> None:
        with DAG("mapped") as dag:
            BashOperator.partial(task_id="b", retries=3).expand(bash_command=["true", "false"])
        mapped = dag.get_task("b")
        assert isinstance(mapped, MappedOperator)
        assert mapped.retries == 3
        assert mapped.is_mapped


class BaseOperatorTests:
    def test_it_rejects_unknown_arguments(self) -> None:
        with DAG("errors"), pytest.raises(TypeError, match="Invalid arguments were passed to EmptyOperator \\(task_id: e\\): foo"):
            EmptyOperator(task_id="e", foo=1)

    def test_it_rejects_a_bad_task_id(self) -> None:
        with DAG("errors"), pytest.raises(ValueError, match="task_id 'a b' may only contain"):
            EmptyOperator(task_id="a b")

    def test_it_applies_default_args_from_the_dag(self) -> None:
        with DAG("defaults", default_args={"retries": 2, "bash_command": "echo default"}) as dag:
            BashOperator(task_id="b")
            EmptyOperator(task_id="e")
        assert dag.get_task("b").retries == 2
        assert dag.get_task("b").bash_command == "echo default"
        assert dag.get_task("e").retries == 2

    def test_it_makes_an_xcom_in_a_template_field_an_upstream_after_finalize(self) -> None:
        with DAG("deps") as dag:
            BashOperator(task_id="b", bash_command=command())
        assert dag.get_task("b").upstream_task_ids == set()
        dag.finalize()
        assert dag.get_task("b").upstream_task_ids == {"command"}
        assert dag.get_task("command").downstream_task_ids == {"b"}

    def test_it_finds_xcoms_nested_in_a_template_field(self) -> None:
        with DAG("deps") as dag:
            PythonOperator(task_id="p", python_callable=print, op_kwargs={"cmd": [command()]})
        dag.finalize()
        assert dag.get_task("p").upstream_task_ids == {"command"}
