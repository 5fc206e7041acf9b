"""Typed DAG params: ``Param(default, type=..., enum=..., minimum=...)`` as in Airflow, and the one
rule that checks a run's conf against them (the trigger form, the CLI and the REST API use it).

A ``Param`` is a default plus JSON-schema keywords (draft 2020-12, checked by ``jsonschema``).
The serialized DAG keeps the plain defaults in ``params`` (what tasks, names and ``ParamRef``
read, unchanged) and the schemas in ``params_schema``, present only when a DAG uses ``Param``,
so the hash of a DAG without one does not change.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from dagsapp.exceptions import DagDefinitionError


class _NotSet:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NotSet()


class ParamSpec(TypedDict):
    """One param in the serialized DAG: its name, its JSON schema (``description`` and ``title``
    included) and whether a value must be given (no default). A list of them keeps the order the
    DAG file wrote (jsonb does not keep the order of an object's keys)."""

    name: str
    schema: dict[str, Any]
    required: bool


class ParamValidationError(DagDefinitionError):
    pass


class Param:
    """A DAG param with a default and a JSON schema; the keywords are JSON schema's
    (``type``, ``enum``, ``minimum``, ``maximum``, ``minLength``, ``pattern``, ``format``,
    ``items``, ...), as in Airflow. Without a default, the value must be given at trigger time."""

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any) -> None:
        self.value = default
        self.description = description
        self.schema: dict[str, Any] = {k: v for k, v in schema.items() if v is not None}
        if description is not None:
            self.schema["description"] = description
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as exc:
            raise ParamValidationError(f"Param({default!r}, ...) has an invalid schema: {exc.message}") from None
        if self.has_default:
            problem = check_value(self.schema, default)
            if problem:
                raise ParamValidationError(f"Param({default!r}, ...): the default is invalid: {problem}")

    @property
    def has_default(self) -> bool:
        return self.value is not NOTSET

    def dump(self, name: str) -> ParamSpec:
        return {"name": name, "schema": dict(self.schema), "required": not self.has_default}

    def __repr__(self) -> str:
        return f"Param({self.value!r}, {self.schema!r})"


def split_params(dag_id: str, params: Mapping[str, Any], *, scheduled: bool) -> tuple[dict[str, Any], list[ParamSpec]]:
    """``DAG(params=...)`` as plain defaults (None for a required Param) and the Params' specs."""
    values: dict[str, Any] = {}
    specs: list[ParamSpec] = []
    for name, value in params.items():
        if isinstance(value, Param):
            if scheduled and not value.has_default:
                # As Airflow: a scheduled run has no one to give the value.
                raise ParamValidationError(f"DAG {dag_id!r} has a schedule, so param {name!r} needs a default")
            values[name] = value.value if value.has_default else None
            specs.append(value.dump(name))
        else:
            values[name] = value
    return values, specs


def check_value(schema: Mapping[str, Any], value: Any) -> str | None:
    """Why ``value`` does not fit ``schema`` (the most relevant error, with where in the value), or None."""
    error: ValidationError | None = best_match(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(value))
    if error is None:
        return None
    where = "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def validate_conf(specs: Sequence[ParamSpec], defaults: Mapping[str, Any], conf: Mapping[str, Any]) -> dict[str, str]:
    """Per param, why the value a run with this conf would get is invalid; empty when every param
    is fine. A key of the conf that is no param passes unchecked (Airflow does the same)."""
    errors: dict[str, str] = {}
    for spec in specs:
        name = spec["name"]
        if name in conf:
            value = conf[name]
        elif spec["required"]:
            errors[name] = "a value is required (the param has no default)"
            continue
        else:
            value = defaults.get(name)
        problem = check_value(spec["schema"], value)
        if problem:
            errors[name] = problem
    return errors
