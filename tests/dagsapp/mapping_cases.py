"""Every kind of mapped input, with the upstream results it reads: the table that the authoring,
serialized and SQL paths of "item i of a mapped input" are checked against (here and in tests/runs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagsapp.dag import DAG
from dagsapp.decorators import task
from dagsapp.xcom_arg import ParamRef, VariableRef

CONSUMER = "consume"


@task
def make() -> Any:
    return None  # the result is given by the case, not computed


@task
def other() -> Any:
    return None


@task
def make_one(i: int) -> Any:
    return i


@task
def consume(**kwargs: Any) -> Any:
    return kwargs


@dataclass
class MappingCase:
    """``build`` wires ``consume`` in a DAG; ``results`` are unmapped upstream results, ``mapped``
    the per-index results of a mapped upstream, ``params`` the DAG's params, ``variables`` Variables."""

    name: str
    build: Callable[[], Any]
    length: int
    results: dict[str, Any] = field(default_factory=dict)
    mapped: dict[str, list[Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    needs_user_code: bool = False  # .map(f): only the worker, with the DAG file, can resolve it

    def dag(self) -> DAG:
        with DAG(f"case_{self.name}", params=self.params) as the_dag:
            self.build()
        return the_dag

    @property
    def refs(self) -> dict[tuple[str, str], Any]:
        return {**{("param", k): v for k, v in self.params.items()}, **{("variable", k): v for k, v in self.variables.items()}}


CASES = [
    MappingCase("literal_list", lambda: consume.expand(x=[1, "b", {"c": 3}]), 3),
    MappingCase("literal_dict", lambda: consume.expand(x={"eu": "Frankfurt", "us": "Ohio"}), 2),
    MappingCase("xcom_list", lambda: consume.expand(x=make()), 3, results={"make": [10, None, "z"]}),
    MappingCase("xcom_dict", lambda: consume.expand(x=make()), 2, results={"make": {"eu": [1], "us": {"n": 2}}}),
    MappingCase("xcom_mapped_upstream", lambda: consume.expand(x=make_one.expand(i=[1, 2, 3])), 3, mapped={"make_one": [5, 6, 7]}),
    MappingCase("map", lambda: consume.expand(x=make().map(lambda v: v * 2)), 3, results={"make": [1, 2, 3]}, needs_user_code=True),
    MappingCase("zip_shortest", lambda: consume.expand(x=make().zip(other())), 2, results={"make": [1, 2, 3], "other": ["a", "b"]}),
    MappingCase("zip_fillvalue", lambda: consume.expand(x=make().zip(other(), fillvalue=0)), 3,
                results={"make": [1, 2, 3], "other": ["a", "b"]}),
    MappingCase("zip_fillvalue_with_literal", lambda: consume.expand(x=make().zip(["p"], fillvalue={"none": None})), 3,
                results={"make": [1, 2, 3]}),
    MappingCase("concat", lambda: consume.expand(x=make().concat(other(), [True])), 6,
                results={"make": [1, 2, 3], "other": {"a": 1, "b": 2}}),
    MappingCase("param", lambda: consume.expand(x=ParamRef("files")), 2, params={"files": ["a.csv", "b.csv"]}),
    MappingCase("variable", lambda: consume.expand(x=VariableRef("regions")), 2, variables={"regions": {"eu": "x", "us": "y"}}),
    MappingCase("expand_cross_product", lambda: consume.expand(a=[1, 2], b=make(), c={"k": "v", "l": "w"}), 12,
                results={"make": ["x", "y", "z"]}),
    MappingCase("expand_kwargs_literal", lambda: consume.expand_kwargs([{"a": 1, "b": 2}, {"a": 3}]), 2),
    MappingCase("expand_kwargs_xcom", lambda: consume.expand_kwargs(make()), 3,
                results={"make": [{"a": 1}, {"a": 2, "b": [3]}, {"b": None}]}),
]
