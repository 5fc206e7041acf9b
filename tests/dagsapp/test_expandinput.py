"""Counting and resolving expand inputs: the pure mapping logic shared by scheduler and worker."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from dagsapp.dag import DAG
from dagsapp.decorators import task
from dagsapp.exceptions import MappingError
from dagsapp.expandinput import (
    DictOfListsExpandInput,
    ListOfDictsExpandInput,
    NotResolvableHere,
    expand_input_length,
    resolve_spec,
    source_length,
    unravel_index,
)
from dagsapp.serialization import serialize_dag
from dagsapp.xcom_arg import ParamRef, ResolveScope, VariableRef
from tests.dagsapp.mapping_cases import CASES, CONSUMER, MappingCase, consume

Resolver = Callable[..., Any]


@task
def produce() -> list[int]:
    return [1, 2, 3]


@task
def produce_one(i: int) -> int:
    return i


def _outputs() -> tuple[Any, Any]:
    """An unmapped task's output and a mapped task's output, in a throwaway DAG."""
    with DAG("lengths"):
        plain = produce()
        many = produce_one.expand(i=[1, 2])
    return plain, many


class UnravelIndexTests:
    @pytest.mark.parametrize("lengths", [[3], [2, 3], [3, 1, 2], [2, 2, 2, 2], [1, 1], [4, 5]])
    def test_it_matches_itertools_product_order(self, lengths: list[int]) -> None:
        expected = list(itertools.product(*(range(n) for n in lengths)))
        got = [tuple(unravel_index(i, lengths)) for i in range(len(expected))]
        assert got == expected

    def test_it_varies_the_last_keyword_fastest(self) -> None:
        assert unravel_index(0, [2, 3]) == [0, 0]
        assert unravel_index(1, [2, 3]) == [0, 1]
        assert unravel_index(3, [2, 3]) == [1, 0]

    @pytest.mark.parametrize(("map_index", "lengths"), [(6, [2, 3]), (-1, [2, 3]), (0, [0]), (0, [3, 0])])
    def test_it_raises_index_error_out_of_range(self, map_index: int, lengths: list[int]) -> None:
        with pytest.raises(IndexError, match=f"map_index {map_index} out of range"):
            unravel_index(map_index, lengths)


class SourceLengthTests:
    def test_it_counts_a_literal(self, make_resolver: Resolver) -> None:
        assert source_length({"t": "literal", "length": 4}, make_resolver()) == 4

    def test_it_asks_for_an_unmapped_xcom_length(self, make_resolver: Resolver) -> None:
        src = {"t": "xcom", "task_id": "produce", "key": "return_value", "mapped": False}
        assert source_length(src, make_resolver(results={"produce": [1, 2, 3]})) == 3

    def test_it_asks_for_a_mapped_xcom_length(self, make_resolver: Resolver) -> None:
        src = {"t": "xcom", "task_id": "produce_one", "key": "return_value", "mapped": True}
        # The mapped flag is passed through: the same task id as an unmapped result would be None.
        assert source_length(src, make_resolver(mapped={"produce_one": [10, 20]})) == 2
        assert source_length(src, make_resolver(results={"produce_one": [1, 2, 3]})) is None

    def test_it_is_none_while_an_upstream_has_not_produced(self, make_resolver: Resolver) -> None:
        src = {"t": "xcom", "task_id": "produce", "key": "return_value", "mapped": False}
        assert source_length(src, make_resolver()) is None

    def test_it_counts_a_map_as_its_argument(self, make_resolver: Resolver) -> None:
        plain, _ = _outputs()
        src = plain.map(str).serialize()
        assert source_length(src, make_resolver(results={"produce": [1, 2, 3, 4, 5]})) == 5

    @pytest.mark.parametrize(("combine", "expected"), [
        pytest.param(lambda plain, many: plain.zip(many), 2, id="zip_as_the_shortest"),
        pytest.param(lambda plain, many: plain.zip(many, fillvalue=None), 4, id="zip_with_fillvalue_as_the_longest"),
        pytest.param(lambda plain, many: plain.concat(many), 6, id="concat_as_the_sum"),
    ])
    def test_it_counts_a_combination_of_two_outputs(self, make_resolver: Resolver, combine: Callable[[Any, Any], Any],
                                                    expected: int) -> None:
        plain, many = _outputs()
        src = combine(plain, many).serialize()
        resolver = make_resolver(results={"produce": [1, 2, 3, 4]}, mapped={"produce_one": [1, 2]})
        assert source_length(src, resolver) == expected

    @pytest.mark.parametrize("combine", ["zip", "zip_fill", "concat"])
    def test_it_is_none_when_one_combined_length_is_unknown(self, make_resolver: Resolver, combine: str) -> None:
        plain, many = _outputs()
        src = {
            "zip": plain.zip(many), "zip_fill": plain.zip(many, fillvalue=0), "concat": plain.concat(many),
        }[combine].serialize()
        assert source_length(src, make_resolver(results={"produce": [1, 2, 3]})) is None

    def test_it_counts_a_param_or_variable_list_or_dict(self, make_resolver: Resolver) -> None:
        resolver = make_resolver(refs={("param", "files"): ["a", "b"], ("variable", "regions"): {"eu": 1, "us": 2, "ap": 3}})
        assert source_length(ParamRef("files").serialize(), resolver) == 2
        assert source_length(VariableRef("regions").serialize(), resolver) == 3

    @pytest.mark.parametrize(("ref", "value", "match"), [
        pytest.param(ParamRef("files"), 5, r"ParamRef\('files'\) resolved to 'int', which cannot be mapped over",
                     id="a_param_that_is_not_a_list"),
        pytest.param(VariableRef("regions"), "eu,us", r"VariableRef\('regions'\) resolved to 'str'", id="a_variable_that_is_a_string"),
    ])
    def test_it_rejects_a_ref_value_it_cannot_map_over(self, make_resolver: Resolver, ref: ParamRef | VariableRef, value: object,
                                                       match: str) -> None:
        resolver = make_resolver(refs={(ref.kind, ref.key): value})
        with pytest.raises(MappingError, match=match):
            source_length(ref.serialize(), resolver)


class ExpandInputLengthTests:
    def test_it_multiplies_dict_of_lists_lengths(self, make_resolver: Resolver) -> None:
        plain, _ = _outputs()
        spec = DictOfListsExpandInput({"a": [1, 2], "b": plain, "c": {"k": 1, "l": 2, "m": 3}}).serialize()
        assert expand_input_length(spec, make_resolver(results={"produce": [1, 2, 3, 4]})) == 2 * 4 * 3

    def test_it_is_zero_when_one_list_is_empty(self, make_resolver: Resolver) -> None:
        spec = DictOfListsExpandInput({"a": [1, 2], "b": []}).serialize()
        assert expand_input_length(spec, make_resolver()) == 0

    def test_it_is_none_when_one_length_is_unknown(self, make_resolver: Resolver) -> None:
        plain, _ = _outputs()
        spec = DictOfListsExpandInput({"a": [1, 2], "b": plain}).serialize()
        assert expand_input_length(spec, make_resolver()) is None

    def test_it_counts_list_of_dicts(self, make_resolver: Resolver) -> None:
        plain, _ = _outputs()
        assert expand_input_length(ListOfDictsExpandInput([{"x": 1}, {"x": 2}]).serialize(), make_resolver()) == 2
        spec = ListOfDictsExpandInput(plain).serialize()
        assert expand_input_length(spec, make_resolver(results={"produce": [{"x": 1}] * 5})) == 5
        assert expand_input_length(spec, make_resolver()) is None


class DictOfListsExpandInputTests:
    def test_it_resolves_in_itertools_product_order(self, make_resolver: Resolver) -> None:
        values = {"a": [1, 2], "b": ["x", "y", "z"], "c": [True, False]}
        expand_input = DictOfListsExpandInput(values)
        scope = ResolveScope(make_resolver())
        expected = [dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())]
        got = [expand_input.resolve(scope, i)[0] for i in range(len(expected))]
        assert got == expected

    def test_it_resolves_an_xcom_source_through_the_resolver(self, make_resolver: Resolver) -> None:
        plain, _ = _outputs()
        expand_input = DictOfListsExpandInput({"n": plain, "s": ["a", "b"]})
        scope = ResolveScope(make_resolver(results={"produce": [10, 20, 30]}))
        got = [expand_input.resolve(scope, i)[0] for i in range(6)]
        assert got == [{"n": n, "s": s} for n in (10, 20, 30) for s in ("a", "b")]

    def test_it_maps_a_dict_to_key_value_pairs(self, make_resolver: Resolver) -> None:
        expand_input = DictOfListsExpandInput({"region": {"eu": "Frankfurt", "us": "Ohio"}})
        kwargs, info = expand_input.resolve(ResolveScope(make_resolver()), 1)
        assert kwargs == {"region": ("us", "Ohio")}
        assert info.key == "us"
        assert info.value == "Ohio"

    def test_it_exposes_per_keyword_keys_and_values_when_several(self, make_resolver: Resolver) -> None:
        expand_input = DictOfListsExpandInput({"region": {"eu": "Frankfurt", "us": "Ohio"}, "n": [7, 8]})
        kwargs, info = expand_input.resolve(ResolveScope(make_resolver()), 3)
        assert kwargs == {"region": ("us", "Ohio"), "n": 8}
        assert info.key == {"region": "us", "n": 1}
        assert info.value == {"region": "Ohio", "n": 8}
        assert info.kwargs == kwargs

    def test_it_resolves_a_param_ref(self, make_resolver: Resolver) -> None:
        expand_input = DictOfListsExpandInput({"f": ParamRef("files")})
        scope = ResolveScope(make_resolver(refs={("param", "files"): ["a.csv", "b.csv"]}))
        assert expand_input.resolve(scope, 1)[0] == {"f": "b.csv"}

    def test_it_names_the_keyword_whose_length_is_unknown(self, make_resolver: Resolver) -> None:
        plain, _ = _outputs()
        expand_input = DictOfListsExpandInput({"a": [1], "n": plain})
        with pytest.raises(MappingError, match="the length of 'n' is not known yet"):
            expand_input.resolve(ResolveScope(make_resolver()), 0)


class ListOfDictsExpandInputTests:
    def test_it_resolves_one_dict_per_index(self, make_resolver: Resolver) -> None:
        expand_input = ListOfDictsExpandInput([{"x": 1, "y": 2}, {"x": 3}])
        kwargs, info = expand_input.resolve(ResolveScope(make_resolver()), 1)
        assert kwargs == {"x": 3}
        assert info.key == 1
        assert info.value == {"x": 3}

    def test_it_resolves_items_of_an_xcom(self, make_resolver: Resolver) -> None:
        plain, _ = _outputs()
        expand_input = ListOfDictsExpandInput(plain)
        scope = ResolveScope(make_resolver(results={"produce": [{"x": 1}, {"x": 2}]}))
        assert expand_input.resolve(scope, 1)[0] == {"x": 2}

    def test_it_rejects_an_item_that_is_not_a_dict(self, make_resolver: Resolver) -> None:
        plain, _ = _outputs()
        expand_input = ListOfDictsExpandInput(plain)
        scope = ResolveScope(make_resolver(results={"produce": [{"x": 1}, 5]}))
        with pytest.raises(MappingError, match="expand_kwargs\\(\\) expects each item to be a dict, but item 1 is 'int'"):
            expand_input.resolve(scope, 1)

    def test_it_rejects_an_item_with_a_non_string_key(self, make_resolver: Resolver) -> None:
        plain, _ = _outputs()
        expand_input = ListOfDictsExpandInput(plain)
        scope = ResolveScope(make_resolver(results={"produce": [{1: "x"}]}))
        with pytest.raises(MappingError, match="expand_kwargs\\(\\) item 0 has a non-string key 1"):
            expand_input.resolve(scope, 0)


@task
def letters() -> list[str]:
    return ["a", "b"]


class ResolveSerializedTests:
    def test_it_pads_a_zip_with_the_fillvalue_as_the_authoring_path_does(self, make_resolver: Resolver) -> None:

        with DAG("zipfill") as the_dag:
            consume.expand(x=produce().zip(letters(), fillvalue=0))
        resolver = make_resolver(results={"produce": [1, 2, 3], "letters": ["a", "b"]})
        spec = serialize_dag(the_dag)["tasks"]["consume"]["mapping"]["input"]
        authoring, _ = the_dag.task_dict["consume"].expand_input.resolve(ResolveScope(resolver), 2)
        assert authoring == {"x": (3, 0)}
        assert resolve_spec(spec, resolver, 2).kwargs == {"x": (3, 0)}


def _authoring(case: MappingCase, resolver: Any, map_index: int) -> tuple[Any, Any, Any]:
    """The worker's path: the expand input from the DAG file."""
    _kwargs, info = case.dag().task_dict[CONSUMER].expand_input.resolve(ResolveScope(resolver), map_index)
    return info.key, info.kwargs, info.value


def _serialized(case: MappingCase, resolver: Any, map_index: int) -> tuple[Any, Any, Any]:
    """The scheduler's path: the expand input as stored (through JSON, as the database keeps it)."""
    spec = json.loads(json.dumps(serialize_dag(case.dag())))["tasks"][CONSUMER]["mapping"]["input"]
    info = resolve_spec(spec, resolver, map_index)
    return info.key, info.kwargs, info.value


class ItemOfAMappedInputTests:
    @pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
    def test_it_is_the_same_on_the_authoring_and_serialized_paths(self, case: MappingCase, make_resolver: Resolver) -> None:
        resolver = make_resolver(results=case.results, mapped=case.mapped, refs=case.refs)
        spec = serialize_dag(case.dag())["tasks"][CONSUMER]["mapping"]["input"]
        assert expand_input_length(spec, resolver) == case.length
        for i in range(case.length):
            expected = _authoring(case, resolver, i)
            if case.needs_user_code:
                with pytest.raises(NotResolvableHere):
                    _serialized(case, resolver, i)
            else:
                assert _serialized(case, resolver, i) == expected, f"map_index {i}"

    def test_it_leaves_a_zip_whose_fillvalue_was_not_stored_to_the_worker(self, make_resolver: Resolver) -> None:
        resolver = make_resolver(results={"produce": [1, 2, 3], "letters": ["a", "b"]})
        with DAG("zipfill_old") as the_dag:
            consume.expand(x=produce().zip(letters(), fillvalue=0))
        spec = serialize_dag(the_dag)["tasks"][CONSUMER]["mapping"]["input"]
        assert spec["type"] == "dict_of_lists"
        zipped = spec["args"]["x"]
        assert zipped["t"] == "zip"
        del zipped["fillvalue"]  # as written before the fillvalue was stored
        assert resolve_spec(spec, resolver, 1).kwargs == {"x": (2, "b")}
        with pytest.raises(NotResolvableHere, match="fillvalue was not stored"):
            resolve_spec(spec, resolver, 2)
