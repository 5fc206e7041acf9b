"""DAG: ids, schedules, `>>` / `<<`, task groups, cycle detection, @dag params."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dagsapp.dag import DAG, dag
from dagsapp.decorators import task
from dagsapp.exceptions import DagCycleError, DuplicateTaskIdFound
from dagsapp.operators import EmptyOperator
from dagsapp.taskgroup import TaskGroup
from dagsapp.xcom_arg import ParamRef


def _upstream(the_dag: DAG) -> dict[str, list[str]]:
    return {t.task_id: sorted(t.upstream_task_ids) for t in the_dag.tasks}


class DagDefinitionTests:
    def test_it_rejects_a_duplicate_task_id(self) -> None:
        with DAG("dup"):
            EmptyOperator(task_id="a")
            with pytest.raises(DuplicateTaskIdFound, match="Task id 'a' has already been added to the DAG 'dup'") as info:
                EmptyOperator(task_id="a")
        assert info.value.task_id == "a"
        assert info.value.dag_id == "dup"

    def test_it_rejects_an_invalid_schedule(self) -> None:
        with pytest.raises(ValueError, match="DAG 'bad': 'every tuesday' is not a valid schedule"):
            DAG("bad", schedule="every tuesday")

    def test_it_rejects_a_non_positive_timedelta_schedule(self) -> None:
        with pytest.raises(ValueError, match="schedule timedelta must be positive"):
            DAG("bad", schedule=timedelta(0))

    @pytest.mark.parametrize(("schedule", "stored"), [(None, None), ("@daily", "@daily"), ("*/5 * * * *", "*/5 * * * *"),
                                                      (timedelta(hours=1), "timedelta:3600.0"), ("@once", "@once")])
    def test_it_accepts_presets_crons_and_timedeltas(self, schedule: object, stored: str | None) -> None:
        assert DAG("ok", schedule=schedule).schedule == stored

    def test_it_rejects_a_bad_dag_id(self) -> None:
        with pytest.raises(ValueError, match="dag_id 'a/b' may only contain"):
            DAG("a/b")

    def test_it_detects_a_cycle_on_finalize(self) -> None:
        with DAG("cyclic") as the_dag:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            a >> b >> c >> a
        with pytest.raises(DagCycleError, match="Cycle detected in DAG 'cyclic': a >> b >> c >> a") as info:
            the_dag.finalize()
        assert info.value.cycle == ["a", "b", "c", "a"]

    def test_it_names_the_cycle_when_a_task_hangs_below_it(self) -> None:
        with DAG("cyclic") as the_dag:
            x = EmptyOperator(task_id="x")
            y = EmptyOperator(task_id="y")
            after = EmptyOperator(task_id="after")
            x >> y >> x
            y >> after
        with pytest.raises(DagCycleError) as info:
            the_dag.finalize()
        assert set(info.value.cycle) == {"x", "y"}
        assert info.value.cycle[0] == info.value.cycle[-1]

    def test_it_orders_tasks_topologically_with_definition_order_ties(self) -> None:
        with DAG("order") as the_dag:
            late = EmptyOperator(task_id="late")
            first = EmptyOperator(task_id="first")
            second = EmptyOperator(task_id="second")
            other = EmptyOperator(task_id="other")
            first >> late
            second >> late
        assert the_dag.topological_task_ids() == ["first", "second", "late", "other"]
        assert other.task_id == "other"

    def test_it_rejects_a_dependency_between_dags(self) -> None:
        with DAG("one"):
            a = EmptyOperator(task_id="a")
        with DAG("two"):
            b = EmptyOperator(task_id="b")
        with pytest.raises(ValueError, match="different DAGs"):
            a >> b


class DependencyTests:
    def test_it_sets_downstream_and_upstream_with_lists(self) -> None:
        with DAG("deps") as the_dag:
            a, b, c, d = (EmptyOperator(task_id=i) for i in "abcd")
            a >> [b, c]
            [b, c] >> d
        assert _upstream(the_dag) == {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}

    def test_it_sets_upstream_with_lshift(self) -> None:
        with DAG("deps") as the_dag:
            a, b, c = (EmptyOperator(task_id=i) for i in "abc")
            c << [a, b]
            [a, b] << EmptyOperator(task_id="z")
        assert _upstream(the_dag) == {"a": ["z"], "b": ["z"], "c": ["a", "b"], "z": []}

    def test_it_returns_the_right_operand_so_chains_read_left_to_right(self) -> None:
        with DAG("deps") as the_dag:
            a, b, c = (EmptyOperator(task_id=i) for i in "abc")
            a >> b >> c
        assert _upstream(the_dag) == {"a": [], "b": ["a"], "c": ["b"]}

    def test_it_connects_a_task_group_through_its_roots_and_leaves(self) -> None:
        with DAG("groups") as the_dag:
            start = EmptyOperator(task_id="start")
            with TaskGroup("g") as group:
                a = EmptyOperator(task_id="a")
                b = EmptyOperator(task_id="b")
                c = EmptyOperator(task_id="c")
                a >> [b, c]
            end = EmptyOperator(task_id="end")
            start >> group >> end
        assert _upstream(the_dag) == {"start": [], "g.a": ["start"], "g.b": ["g.a"], "g.c": ["g.a"], "end": ["g.b", "g.c"]}

    def test_it_connects_task_flow_groups_through_their_real_leaves(self) -> None:
        @task
        def make() -> int:
            return 1

        @task
        def use(x: int) -> int:
            return x

        with DAG("groups") as the_dag:
            start = EmptyOperator(task_id="start")
            with TaskGroup("g") as group:
                use(make())
            end = EmptyOperator(task_id="end")
            start >> group >> end
        assert _upstream(the_dag) == {"start": [], "g.make": ["start"], "g.use": ["g.make"], "end": ["g.use"]}

    def test_it_accepts_an_xcom_arg_in_a_dependency(self) -> None:
        @task
        def make() -> int:
            return 1

        with DAG("deps") as the_dag:
            make() >> EmptyOperator(task_id="after")
        assert _upstream(the_dag)["after"] == ["make"]

    def test_it_rejects_a_dependency_on_something_else(self) -> None:
        with DAG("deps"):
            a = EmptyOperator(task_id="a")
            with pytest.raises(TypeError, match="cannot set a dependency on 'str'"):
                a >> ["b"]


class DagDecoratorTests:
    def test_it_turns_parameters_into_params_and_param_refs(self) -> None:
        received: dict[str, object] = {}

        @dag(schedule="@daily")
        def pipeline(files: list[str] = ["a"], limit: int = 3) -> None:  # noqa: B006
            received.update(files=files, limit=limit)
            EmptyOperator(task_id="t")

        the_dag = pipeline(limit=5)
        assert the_dag.dag_id == "pipeline"
        assert the_dag.params == {"files": ["a"], "limit": 5}
        assert isinstance(received["files"], ParamRef)
        assert received["files"].key == "files"  # type: ignore[attr-defined]
        assert the_dag.task_ids == ["t"]
        assert the_dag.schedule == "@daily"
