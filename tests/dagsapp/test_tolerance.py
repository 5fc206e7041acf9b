"""Tolerated failures: the pure rule, and partial(max_failed_ratio=..., max_failed_count=...) at parse time."""

from __future__ import annotations

import pytest

from dagsapp.dag import DAG
from dagsapp.decorators import task, task_group
from dagsapp.exceptions import UnmappableArgument
from dagsapp.operators import BashOperator
from dagsapp.serialization import serialize_dag, tolerance_units
from dagsapp.tolerance import Tolerance


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def total(values: list[int]) -> int:
    return sum(values)


class ToleranceRuleTests:
    def test_it_allows_failures_up_to_the_count(self) -> None:
        rule = Tolerance(max_failed_count=3)
        assert rule.allows(failed=3, total=100)
        assert not rule.allows(failed=4, total=100)

    def test_it_allows_failures_up_to_the_ratio_of_the_total(self) -> None:
        rule = Tolerance(max_failed_ratio=0.1)
        assert rule.allows(failed=10, total=100)
        assert not rule.allows(failed=11, total=100)

    def test_it_compares_the_ratio_without_float_rounding_against_the_user(self) -> None:
        # 0.29 * 100 is 28.999999999999996 in floats: 29 of 100 must still be allowed.
        assert Tolerance(max_failed_ratio=0.29).allows(failed=29, total=100)

    def test_it_needs_both_bounds_when_both_are_given(self) -> None:
        rule = Tolerance(max_failed_ratio=0.5, max_failed_count=2)
        assert rule.allows(failed=2, total=10)
        assert not rule.allows(failed=3, total=10)
        assert not rule.allows(failed=2, total=3)

    def test_it_waits_while_indexes_are_unfinished(self) -> None:
        rule = Tolerance(max_failed_count=5)
        assert rule.verdict(total=10, failed=1, unfinished=2, expanded=True) == "pending"

    def test_it_judges_once_every_index_finished(self) -> None:
        rule = Tolerance(max_failed_count=1)
        assert rule.verdict(total=10, failed=1, unfinished=0, expanded=True) == "tolerated"
        assert rule.verdict(total=10, failed=2, unfinished=0, expanded=True) == "exceeded"

    def test_it_has_nothing_to_judge_without_failures_or_expansion(self) -> None:
        rule = Tolerance(max_failed_ratio=1.0)
        assert rule.verdict(total=10, failed=0, unfinished=3, expanded=True) == "none"
        assert rule.verdict(total=0, failed=1, unfinished=0, expanded=False) == "none"


class ToleranceAtParseTimeTests:
    def test_it_keeps_the_tolerance_of_a_mapped_task(self) -> None:
        with DAG("d") as the_dag:
            add.partial(y=1, max_failed_ratio=0.1, max_failed_count=5).expand(x=[1, 2])
        assert serialize_dag(the_dag)["tasks"]["add"]["tolerance"] == {"max_failed_ratio": 0.1, "max_failed_count": 5}

    def test_it_keeps_the_tolerance_of_a_classic_operator(self) -> None:
        with DAG("d") as the_dag:
            BashOperator.partial(task_id="sh", max_failed_count=2).expand(bash_command=["true", "false"])
        data = serialize_dag(the_dag)
        assert data["tasks"]["sh"]["tolerance"] == {"max_failed_ratio": None, "max_failed_count": 2}
        assert tolerance_units(data)["sh"]["task_ids"] == ["sh"]

    def test_it_keeps_the_tolerance_of_a_mapped_group_for_its_tasks(self) -> None:
        @task_group
        def per_item(x: int) -> None:
            add(add(x))

        with DAG("d") as the_dag:
            per_item.partial(max_failed_ratio=0.5).expand(x=[1, 2])
        data = serialize_dag(the_dag)
        assert data["task_groups"]["per_item"]["tolerance"] == {"max_failed_ratio": 0.5, "max_failed_count": None}
        units = tolerance_units(data)
        assert units["per_item.add"]["unit"] == "per_item"
        assert units["per_item.add"]["task_ids"] == ["per_item.add", "per_item.add__1"]

    def test_it_writes_no_key_without_a_tolerance(self) -> None:
        with DAG("d") as the_dag:
            total(add.expand(x=[1, 2]))
        data = serialize_dag(the_dag)
        assert "tolerance" not in data["tasks"]["add"]
        assert tolerance_units(data) == {}

    def test_it_reads_a_stored_version_without_the_key(self) -> None:
        with DAG("d") as the_dag:
            add.expand(x=[1, 2])
        data = serialize_dag(the_dag)
        data["tasks"]["add"].pop("tolerance", None)
        assert tolerance_units(data) == {}

    @pytest.mark.parametrize(("kwargs", "message"), [
        ({"max_failed_ratio": 1.5}, "add.partial() got max_failed_ratio=1.5; expected a number from 0 to 1"),
        ({"max_failed_ratio": -0.1}, "add.partial() got max_failed_ratio=-0.1; expected a number from 0 to 1"),
        ({"max_failed_ratio": "10%"}, "add.partial() got max_failed_ratio='10%'; expected a number from 0 to 1"),
        ({"max_failed_ratio": True}, "add.partial() got max_failed_ratio=True; expected a number from 0 to 1"),
        ({"max_failed_count": -1}, "add.partial() got max_failed_count=-1; expected a whole number of 0 or more"),
        ({"max_failed_count": 2.5}, "add.partial() got max_failed_count=2.5; expected a whole number of 0 or more"),
    ])
    def test_it_rejects_a_bad_value_naming_the_call(self, kwargs: dict[str, object], message: str) -> None:
        with DAG("d"), pytest.raises(ValueError) as exc:
            add.partial(**kwargs)
        assert str(exc.value) == message

    def test_it_rejects_a_bad_value_on_a_classic_operator(self) -> None:
        with DAG("d"), pytest.raises(ValueError, match=r"BashOperator.partial\(\) got max_failed_count=-2"):
            BashOperator.partial(task_id="sh", max_failed_count=-2)

    def test_it_rejects_a_bad_value_on_a_mapped_group(self) -> None:
        @task_group
        def per_item(x: int) -> None:
            add(x)

        with DAG("d"), pytest.raises(ValueError, match=r"per_item.partial\(\) got max_failed_ratio=2"):
            per_item.partial(max_failed_ratio=2)

    def test_it_rejects_the_options_on_an_unmapped_task(self) -> None:
        with pytest.raises(TypeError, match=r"@task\(\) got max_failed_ratio, which only a mapped task .* add.partial\(\)"):
            task(max_failed_ratio=0.1)(add.function)
        with DAG("d"), pytest.raises(TypeError, match=r"BashOperator\(\) got max_failed_count"):
            BashOperator(task_id="sh", bash_command="true", max_failed_count=1)

    def test_it_rejects_the_options_in_expand(self) -> None:
        with DAG("d"), pytest.raises(UnmappableArgument, match="cannot map over 'max_failed_count'"):
            add.expand(x=[1], max_failed_count=[1])
        with DAG("d"), pytest.raises(UnmappableArgument, match="cannot map over 'max_failed_ratio'"):
            BashOperator.partial(task_id="sh").expand(bash_command=["true"], max_failed_ratio=[0.1])
