"""Param: JSON-schema params of a DAG, serialized beside the plain defaults, and one validation rule."""

from __future__ import annotations

import pytest

from dagsapp.dag import DAG, dag
from dagsapp.operators import EmptyOperator
from dagsapp.params import Param, ParamValidationError, validate_conf
from dagsapp.serialization import dag_hash, serialize_dag


def _dag(params: dict[str, object], **kw: object) -> DAG:
    with DAG("p", params=params, **kw) as the_dag:  # type: ignore[arg-type]
        EmptyOperator(task_id="t")
    return the_dag


class ParamTests:
    def test_it_keeps_defaults_plain_and_schemas_apart(self) -> None:
        d = _dag({"n": Param(3, type="integer", minimum=1, maximum=10, description="how many"), "plain": "x"})
        data = serialize_dag(d)
        assert data["params"] == {"n": 3, "plain": "x"}
        assert data["params_schema"] == [{"name": "n", "schema": {"type": "integer", "minimum": 1, "maximum": 10, "description": "how many"},
                                          "required": False}]

    def test_it_leaves_the_hash_of_a_dag_without_params_unchanged(self) -> None:
        data = serialize_dag(_dag({"plain": 1}))
        # The hash is over the same keys as before Params existed: no new key, not even an empty one.
        assert "params_schema" not in data
        with_param = serialize_dag(_dag({"plain": Param(1)}))
        assert dag_hash(with_param) != dag_hash(data)

    def test_it_marks_a_param_without_default_required(self) -> None:
        data = serialize_dag(_dag({"who": Param(type="string")}))
        assert data["params"] == {"who": None}
        assert data["params_schema"][0]["required"] is True

    def test_it_refuses_a_default_that_breaks_its_own_schema(self) -> None:
        with pytest.raises(ParamValidationError, match="default is invalid: 11 is greater than the maximum of 10"):
            Param(11, type="integer", maximum=10)

    def test_it_refuses_an_invalid_schema(self) -> None:
        with pytest.raises(ParamValidationError, match="invalid schema"):
            Param(1, type="int")

    def test_it_refuses_a_required_param_on_a_scheduled_dag(self) -> None:
        with pytest.raises(ParamValidationError, match="has a schedule, so param 'who' needs a default"):
            _dag({"who": Param(type="string")}, schedule="@daily")

    def test_it_takes_params_as_dag_function_defaults(self) -> None:
        @dag(dag_id="fn")
        def fn(size: int = Param(5, type="integer", enum=[5, 10])) -> None:
            EmptyOperator(task_id="t")

        data = serialize_dag(fn())
        assert data["params"] == {"size": 5}
        assert data["params_schema"][0]["schema"]["enum"] == [5, 10]


class ValidateConfTests:
    specs = [
        {"name": "n", "schema": {"type": "integer", "minimum": 1, "maximum": 10}, "required": False},
        {"name": "color", "schema": {"type": "string", "enum": ["red", "blue"]}, "required": False},
        {"name": "who", "schema": {"type": "string", "minLength": 2}, "required": True},
        {"name": "tags", "schema": {"type": "array", "items": {"type": "string"}}, "required": False},
        {"name": "maybe", "schema": {"type": ["null", "integer"]}, "required": False},
    ]
    defaults = {"n": 3, "color": "red", "who": None, "tags": [], "maybe": None}

    def test_it_accepts_good_values_and_defaults(self) -> None:
        assert validate_conf(self.specs, self.defaults, {"who": "ann"}) == {}  # type: ignore[arg-type]
        assert validate_conf(self.specs, self.defaults, {"who": "ann", "maybe": 4, "unknown": {"x": 1}}) == {}  # type: ignore[arg-type]

    def test_it_names_each_param_that_is_wrong(self) -> None:
        errors = validate_conf(self.specs, self.defaults, {"n": 11, "color": "green", "tags": ["a", 2]})  # type: ignore[arg-type]
        assert errors == {
            "n": "11 is greater than the maximum of 10",
            "color": "'green' is not one of ['red', 'blue']",
            "who": "a value is required (the param has no default)",
            "tags": "[1]: 2 is not of type 'string'",
        }

    def test_it_refuses_text_where_a_number_is_expected(self) -> None:
        assert validate_conf(self.specs, self.defaults, {"who": "ann", "n": "3"}) == {"n": "'3' is not of type 'integer'"}  # type: ignore[arg-type]
