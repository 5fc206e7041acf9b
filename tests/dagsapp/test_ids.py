"""dagsapp.ids: the one rule for DAG ids, task ids and task group ids."""

from __future__ import annotations

import pytest

from dagsapp.dag import DAG
from dagsapp.ids import validate_id
from dagsapp.operators import EmptyOperator


class ValidateIdTests:
    @pytest.mark.parametrize("value", ["a", "A-b_c.d", "x" * 250, "données", "t1"])
    def test_it_accepts_airflows_key_characters(self, value: str) -> None:
        assert validate_id("DAG", "dag_id", value) == value

    @pytest.mark.parametrize("value", ["a/b", "a b", "<b>", "a\n", "a\x00b", "a:b", "x" * 251])
    def test_it_rejects_other_ids_naming_the_call_and_the_id(self, value: str) -> None:
        with pytest.raises(ValueError, match="^DAG\\(\\): dag_id ") as info:
            validate_id("DAG", "dag_id", value)
        assert repr(value)[:40] in str(info.value)

    @pytest.mark.parametrize("value", [None, "", 3])
    def test_it_needs_a_non_empty_string(self, value: object) -> None:
        with pytest.raises(TypeError, match="EmptyOperator\\(\\) needs a non-empty string task_id"):
            validate_id("EmptyOperator", "task_id", value)

    def test_it_allows_dots_in_task_ids_but_not_in_group_ids(self) -> None:
        assert validate_id("EmptyOperator", "task_id", "g.a") == "g.a"
        with pytest.raises(ValueError, match="TaskGroup\\(\\): group_id 'g.a' may only contain letters, digits, '_' and '-'"):
            validate_id("TaskGroup", "group_id", "g.a")

    def test_it_counts_the_full_id(self) -> None:
        with pytest.raises(ValueError, match="is 251 characters long"):
            validate_id("EmptyOperator", "task_id", "a", full_id="g" * 249 + ".a")

    def test_it_shortens_a_huge_id_in_its_message(self) -> None:
        with pytest.raises(ValueError) as info:
            validate_id("DAG", "dag_id", "x" * 10_000)
        assert len(str(info.value)) < 300 and "10000 characters" in str(info.value)

    def test_it_is_the_rule_of_dags_and_tasks(self) -> None:
        with pytest.raises(ValueError, match="DAG\\(\\): dag_id 'a\\\\n' may only contain"):
            DAG("a\n")
        with DAG("ids"), pytest.raises(ValueError, match="EmptyOperator\\(\\): task_id 'a\\\\n' may only contain"):
            EmptyOperator(task_id="a\n")
