"""TaskGroup: its id follows the one rule for DAG, task and group ids (dagsapp.ids), checked at parse time."""

from __future__ import annotations

import pytest

from dagsapp.dag import DAG
from dagsapp.decorators import task, task_group
from dagsapp.operators import EmptyOperator
from dagsapp.taskgroup import TaskGroup

HOSTILE_GROUP_IDS = [
    "a/b", "<B>bold</B>", "a.b", "a b", "a\nb", "ok\n", "x'y", 'x"y', "a\\b", "a%2Fb", "a?b", "a#b",
    '<x>; evil [label="Open details" URL="javascript:alert(1)" shape=box]; foo=<y>',
]


class TaskGroupIdTests:
    @pytest.mark.parametrize("group_id", HOSTILE_GROUP_IDS)
    def test_it_rejects_an_id_outside_airflows_characters(self, group_id: str) -> None:
        with DAG("groups"), pytest.raises(ValueError, match="TaskGroup\\(\\): group_id .* may only contain") as info:
            TaskGroup(group_id)
        assert repr(group_id)[:40] in str(info.value)

    def test_it_rejects_a_hostile_id_given_to_the_decorator(self) -> None:
        with DAG("groups"), pytest.raises(ValueError, match="group_id 'a/b' may only contain"):
            @task_group(group_id="a/b")
            def tidy() -> None:
                EmptyOperator(task_id="e")

            tidy()

    def test_it_rejects_an_id_longer_than_250_characters(self) -> None:
        with DAG("groups"), pytest.raises(ValueError, match="at most 250"):
            TaskGroup("g" * 300)

    def test_it_rejects_a_task_whose_id_is_too_long_with_its_group_prefixes(self) -> None:
        with DAG("groups"), TaskGroup("g" * 200), TaskGroup("h" * 40):
            with pytest.raises(ValueError, match="EmptyOperator\\(\\): task_id 'e+' makes the full id 'g+'\\.\\.\\., which is 252 characters long") as info:
                EmptyOperator(task_id="e" * 10)
            assert "group prefixes included" in str(info.value)

    def test_it_rejects_a_nested_group_whose_full_id_is_too_long(self) -> None:
        with DAG("groups"), TaskGroup("g" * 200), pytest.raises(ValueError, match="TaskGroup\\(\\): group_id 'h+' makes the full id"):
            TaskGroup("h" * 60)

    def test_it_rejects_a_mapped_task_too_long_with_its_group_prefixes(self) -> None:
        @task
        def add(x: int) -> int:
            return x

        with DAG("groups"), TaskGroup("g" * 247), pytest.raises(ValueError, match="task_id 'add' makes the full id"):
            add.expand(x=[1, 2])

    def test_it_accepts_ids_airflow_accepts_up_to_250_characters(self) -> None:
        with DAG("groups") as the_dag, TaskGroup("g-1_x"), TaskGroup("grüße"):
            EmptyOperator(task_id="e" * (250 - len("g-1_x.grüße.")))
        assert [t.task_id for t in the_dag.tasks] == ["g-1_x.grüße." + "e" * 238]
