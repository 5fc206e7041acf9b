"""XComArg.map / zip / concat: what one mapped instance receives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dagsapp.dag import DAG
from dagsapp.decorators import task
from dagsapp.xcom_arg import MapXComArg, ParamRef, ResolveScope

Resolver = Callable[..., Any]


@task
def numbers() -> list[int]:
    return [1, 2, 3]


@task
def letters() -> list[str]:
    return ["a", "b"]


@task
def square(x: int) -> int:
    return x * x


def _outputs() -> tuple[Any, Any, Any]:
    with DAG("xcom_args"):
        nums = numbers()
        lets = letters()
        squares = square.expand(x=[1, 2])
    return nums, lets, squares


class MapXComArgTests:
    def test_it_applies_the_function_to_each_item(self, make_resolver: Resolver) -> None:
        nums, _, _ = _outputs()
        scope = ResolveScope(make_resolver(results={"numbers": [1, 2, 3]}))
        assert [nums.map(lambda n: n * 10).item(scope, i)[1] for i in range(3)] == [10, 20, 30]

    def test_it_collapses_chained_maps_and_applies_them_in_order(self, make_resolver: Resolver) -> None:
        nums, _, _ = _outputs()
        chained = nums.map(lambda n: n + 1).map(lambda n: n * 10)
        assert isinstance(chained, MapXComArg)
        assert chained.arg is nums
        assert len(chained.callables) == 2
        scope = ResolveScope(make_resolver(results={"numbers": [1, 2, 3]}))
        assert chained.item(scope, 2) == (2, 40, 40)
        assert chained.serialize() == {"t": "map", "arg": nums.serialize()}

    def test_it_maps_a_dict_result_as_key_value_pairs(self, make_resolver: Resolver) -> None:
        nums, _, _ = _outputs()
        scope = ResolveScope(make_resolver(results={"numbers": {"eu": 1, "us": 2}}))
        assert nums.map(lambda kv: f"{kv[0]}={kv[1]}").item(scope, 1) == ("us", "us=2", "us=2")

    def test_it_maps_the_whole_result_lazily(self, make_resolver: Resolver) -> None:
        nums, _, _ = _outputs()
        seen: list[int] = []

        def f(n: int) -> int:
            seen.append(n)
            return -n

        whole = nums.map(f).resolve(ResolveScope(make_resolver(results={"numbers": [1, 2, 3]})))
        assert len(whole) == 3
        assert whole[1] == -2
        assert seen == [2]
        assert list(whole) == [-1, -2, -3]

    def test_it_maps_the_items_of_a_mapped_upstream(self, make_resolver: Resolver) -> None:
        _, _, squares = _outputs()
        scope = ResolveScope(make_resolver(mapped={"square": [1, 4]}))
        assert squares.map(str).item(scope, 1)[1] == "4"


class ZipXComArgTests:
    def test_it_pairs_items_at_the_same_index(self, make_resolver: Resolver) -> None:
        nums, lets, _ = _outputs()
        scope = ResolveScope(make_resolver(results={"numbers": [1, 2, 3], "letters": ["a", "b"]}))
        zipped = nums.zip(lets)
        assert [zipped.item(scope, i)[1] for i in range(2)] == [(1, "a"), (2, "b")]
        assert zipped.resolve(scope) == [(1, "a"), (2, "b")]

    def test_it_pads_the_shorter_with_the_fillvalue(self, make_resolver: Resolver) -> None:
        nums, lets, _ = _outputs()
        scope = ResolveScope(make_resolver(results={"numbers": [1, 2, 3], "letters": ["a", "b"]}))
        zipped = nums.zip(lets, fillvalue="-")
        assert [zipped.item(scope, i)[1] for i in range(3)] == [(1, "a"), (2, "b"), (3, "-")]
        assert zipped.resolve(scope) == [(1, "a"), (2, "b"), (3, "-")]

    def test_it_zips_with_a_mapped_upstream(self, make_resolver: Resolver) -> None:
        nums, _, squares = _outputs()
        scope = ResolveScope(make_resolver(results={"numbers": [1, 2, 3]}, mapped={"square": [1, 4]}))
        assert nums.zip(squares).item(scope, 1) == (1, (2, 4), (2, 4))

    def test_it_zips_a_dicts_keys_as_the_builtin_zip_does(self, make_resolver: Resolver) -> None:
        nums, lets, _ = _outputs()
        scope = ResolveScope(make_resolver(results={"numbers": [1, 2], "letters": {"k": "v", "j": "w"}}))
        zipped = nums.zip(lets)
        assert [zipped.item(scope, i)[1] for i in range(2)] == [(1, "k"), (2, "j")]
        assert zipped.resolve(scope) == [(1, "k"), (2, "j")]

    def test_it_depends_on_every_zipped_task(self) -> None:
        nums, lets, _ = _outputs()
        assert {op.task_id for op, _ in nums.zip(lets).iter_references()} == {"numbers", "letters"}


class ConcatXComArgTests:
    def test_it_walks_the_segments_in_order(self, make_resolver: Resolver) -> None:
        nums, lets, squares = _outputs()
        scope = ResolveScope(
            make_resolver(results={"numbers": [1, 2, 3], "letters": ["a", "b"]}, mapped={"square": [1, 4]})
        )
        joined = nums.concat(lets, squares)
        assert [joined.item(scope, i)[1] for i in range(7)] == [1, 2, 3, "a", "b", 1, 4]
        assert joined.item(scope, 4)[0] == 4

    def test_it_raises_past_the_last_segment(self, make_resolver: Resolver) -> None:
        nums, lets, _ = _outputs()
        scope = ResolveScope(make_resolver(results={"numbers": [1], "letters": ["a"]}))
        with pytest.raises(IndexError, match="concat\\(\\) index 2 out of range"):
            nums.concat(lets).item(scope, 2)

    def test_it_resolves_the_whole_concatenation(self, make_resolver: Resolver) -> None:
        # Like itertools.chain, as Airflow's concat (tests/parity/fixtures/p_concat_dict.json): a dict gives its keys.
        nums, lets, _ = _outputs()
        scope = ResolveScope(make_resolver(results={"numbers": [1, 2], "letters": {"k": "v"}}))
        assert nums.concat(lets).resolve(scope) == [1, 2, "k"]

    def test_it_takes_a_dicts_keys_item_by_item(self, make_resolver: Resolver) -> None:
        nums, lets, _ = _outputs()
        scope = ResolveScope(make_resolver(results={"numbers": [1], "letters": {"k": "v", "j": "w"}}))
        assert [nums.concat(lets).item(scope, i)[1] for i in range(3)] == [1, "k", "j"]


class XComArgTests:
    def test_it_cannot_be_iterated_in_a_dag_file(self) -> None:
        nums, _, _ = _outputs()
        with pytest.raises(TypeError, match="expand\\(\\) over it instead"):
            list(nums)

    def test_it_marks_a_mapped_producer_in_its_serialized_form(self) -> None:
        nums, _, squares = _outputs()
        assert nums.serialize() == {"t": "xcom", "task_id": "numbers", "key": "return_value", "mapped": False}
        assert squares.serialize()["mapped"] is True

    def test_it_rejects_an_empty_param_key(self) -> None:
        with pytest.raises(TypeError, match="ParamRef\\(\\) needs a non-empty string key"):
            ParamRef("")


class ZipSerializeTests:
    def test_it_stores_a_fillvalue_that_json_gives_back_unchanged(self) -> None:
        nums, lets, _ = _outputs()
        assert nums.zip(lets, fillvalue={"n": None}).serialize()["fillvalue"] == {"n": None}
        assert "fillvalue" not in nums.zip(lets).serialize()

    def test_it_leaves_out_a_fillvalue_json_would_change(self) -> None:
        nums, lets, _ = _outputs()
        assert "fillvalue" not in nums.zip(lets, fillvalue=(1, 2)).serialize()
        assert "fillvalue" not in nums.zip(lets, fillvalue=object()).serialize()
        assert nums.zip(lets, fillvalue=(1, 2)).serialize()["fill"] is True
