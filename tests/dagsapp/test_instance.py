"""One task instance's arguments: resolved for its map_index, literal templates rendered, data left alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dagsapp.dag import DAG
from dagsapp.decorators import task, task_group
from dagsapp.instance import prepare_instance, render_fields, render_map_index
from dagsapp.operators import BashOperator, DecoratedPythonOperator
from dagsapp.xcom_arg import ParamRef

Resolver = Callable[..., Any]


@task
def make() -> list[str]:
    return ["echo {{ x }}"]


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def show(total: int, n: int) -> int:
    return total


def _render(the_dag: DAG, task_id: str, resolver: Any, map_index: int) -> tuple[Any, dict[str, Any]]:
    node = the_dag.get_task(task_id)
    prepared = prepare_instance(node, resolver, map_index)
    rendered = render_fields(prepared, node, resolver, map_index, {"map_index": map_index, "x": "RENDERED", "ds": "2024-01-02"})
    return prepared, rendered


class PrepareInstanceTests:
    def test_it_gives_a_mapped_task_its_kwargs_for_one_index(self, make_resolver: Resolver) -> None:
        with DAG("inst") as the_dag:
            add.partial(y=10).expand(x=[1, 2, 3])
        prepared = prepare_instance(the_dag.get_task("add"), make_resolver(), 2)
        assert isinstance(prepared.operator, DecoratedPythonOperator)
        assert prepared.operator.op_kwargs == {"y": 10, "x": 3}
        assert prepared.operator.task_id == "add"
        assert prepared.mapping is not None
        assert prepared.mapping.key == 2
        assert prepared.mapping.value == 3

    def test_it_gives_a_classic_operator_its_constructor_argument(self, make_resolver: Resolver) -> None:
        with DAG("inst") as the_dag:
            BashOperator.partial(task_id="b", env={"A": "1"}).expand(bash_command=["echo one", "echo two"])
        prepared = prepare_instance(the_dag.get_task("b"), make_resolver(), 1)
        assert isinstance(prepared.operator, BashOperator)
        assert prepared.operator.bash_command == "echo two"
        assert prepared.operator.env == {"A": "1"}

    def test_it_does_not_change_the_dag_task(self, make_resolver: Resolver) -> None:
        with DAG("inst") as the_dag:
            BashOperator(task_id="b", bash_command="echo {{ map_index }}")
        _render(the_dag, "b", make_resolver(), -1)
        assert the_dag.get_task("b").bash_command == "echo {{ map_index }}"  # type: ignore[attr-defined]

    def test_it_resolves_expand_kwargs_from_an_xcom(self, make_resolver: Resolver) -> None:
        with DAG("inst") as the_dag:
            add.expand_kwargs(make())
        resolver = make_resolver(results={"make": [{"x": 1}, {"x": 2, "y": 5}]})
        assert prepare_instance(the_dag.get_task("add"), resolver, 1).operator.op_kwargs == {"x": 2, "y": 5}


class RenderFieldsTests:
    def test_it_renders_literal_commands_per_index(self, make_resolver: Resolver) -> None:
        with DAG("inst") as the_dag:
            BashOperator.partial(task_id="b").expand(bash_command=["echo {{ map_index }}", "echo again {{ map_index }}"])
        assert _render(the_dag, "b", make_resolver(), 0)[1]["bash_command"] == "echo 0"
        prepared, rendered = _render(the_dag, "b", make_resolver(), 1)
        assert rendered["bash_command"] == "echo again 1"
        assert prepared.operator.bash_command == "echo again 1"

    def test_it_does_not_render_a_value_from_an_xcom(self, make_resolver: Resolver) -> None:
        with DAG("inst") as the_dag:
            BashOperator.partial(task_id="b").expand(bash_command=make())
        resolver = make_resolver(results={"make": ["echo {{ x }}"]})
        assert _render(the_dag, "b", resolver, 0)[1]["bash_command"] == "echo {{ x }}"

    def test_it_does_not_render_an_xcom_value_in_a_mapped_task_kwarg(self, make_resolver: Resolver) -> None:
        with DAG("inst") as the_dag:
            add.partial(y="{{ ds }}").expand(x=make())
        resolver = make_resolver(results={"make": ["echo {{ x }}"]})
        rendered = _render(the_dag, "add", resolver, 0)[1]
        assert rendered["op_kwargs"] == {"y": "2024-01-02", "x": "echo {{ x }}"}

    def test_it_does_not_render_a_param_value(self, make_resolver: Resolver) -> None:
        with DAG("inst") as the_dag:
            BashOperator.partial(task_id="b").expand(bash_command=ParamRef("commands"))
        resolver = make_resolver(refs={("param", "commands"): ["echo {{ x }}"]})
        assert _render(the_dag, "b", resolver, 0)[1]["bash_command"] == "echo {{ x }}"

    def test_it_resolves_an_xcom_in_an_unmapped_template_field(self, make_resolver: Resolver) -> None:
        with DAG("inst") as the_dag:
            BashOperator(task_id="b", bash_command=make())
        resolver = make_resolver(results={"make": "echo {{ x }}"})
        assert _render(the_dag, "b", resolver, -1)[1]["bash_command"] == "echo {{ x }}"

    def test_it_fails_on_an_undefined_template_variable(self, make_resolver: Resolver) -> None:
        import jinja2

        with DAG("inst") as the_dag:
            BashOperator(task_id="b", bash_command="echo {{ nope }}")
        with pytest.raises(jinja2.UndefinedError, match="nope"):
            _render(the_dag, "b", make_resolver(), -1)


class MappedTaskGroupInstanceTests:
    def _dag(self) -> DAG:
        @task_group
        def per_number(n: int) -> None:
            show(add(n), n)

        with DAG("groups") as the_dag:
            per_number.expand(n=[5, 6, 7])
        return the_dag

    def test_it_resolves_the_group_argument_for_the_index(self, make_resolver: Resolver) -> None:
        the_dag = self._dag()
        prepared, rendered = _render(the_dag, "per_number.add", make_resolver(), 1)
        assert prepared.group_kwargs == {"n": 6}
        assert prepared.mapping is not None and prepared.mapping.value == 6
        assert rendered["op_args"] == [6]

    def test_it_reads_the_in_group_upstream_at_the_same_index(self, make_resolver: Resolver) -> None:
        the_dag = self._dag()
        resolver = make_resolver(mapped={"per_number.add": [50, 60, 70]})
        rendered = _render(the_dag, "per_number.show", resolver, 2)[1]
        assert rendered["op_args"] == [70, 7]
        assert resolver.value_calls == [("per_number.add", True, 2)]

    def test_it_does_not_render_a_group_argument_from_an_xcom(self, make_resolver: Resolver) -> None:
        @task_group
        def per_command(cmd: str) -> None:
            BashOperator(task_id="run", bash_command=cmd)

        with DAG("groups") as the_dag:
            per_command.expand(cmd=make())
        resolver = make_resolver(results={"make": ["echo {{ x }}", "echo {{ map_index }}"]})
        assert _render(the_dag, "per_command.run", resolver, 1)[1]["bash_command"] == "echo {{ map_index }}"


class RenderMapIndexTests:
    def test_it_renders_the_template_or_nothing(self) -> None:
        assert render_map_index("file {{ map_index }}", {"map_index": 3}) == "file 3"
        assert render_map_index(None, {"map_index": 3}) is None
