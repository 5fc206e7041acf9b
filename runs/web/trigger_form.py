"""The trigger form, built from the DAG's Params (dagsapp/params.py): one field per param, read
back into a conf. Which field a param gets follows its JSON schema, as Airflow's trigger form does:
``enum`` a select, ``boolean`` a checkbox, ``integer``/``number`` a number box, ``string`` a text
box (``format: date`` a date picker), anything else (arrays, objects, no type) JSON in a text area.

Reading the form only converts text to JSON values and says when it cannot; whether a value is
allowed is decided once, by ``runs.services.create_dag_run`` against the schema.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from django.http import QueryDict

from dagsapp.params import ParamSpec
from dagsapp.serialization import DagData

Widget = Literal["text", "number", "checkbox", "select", "json", "date"]
PREFIX = "param."


@dataclass
class ParamField:
    name: str
    label: str
    description: str
    widget: Widget
    kind: str  # the schema's type (the first besides "null"), "" when it has none
    nullable: bool
    required: bool
    value: str = ""  # what the input shows
    checked: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)  # (JSON of the value, label)
    attrs: dict[str, Any] = field(default_factory=dict)  # min, max, step, minlength, maxlength
    error: str = ""

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def input_id(self) -> str:
        return f"param-{self.name}"


def _types(schema: Mapping[str, Any]) -> list[str]:
    t = schema.get("type")
    return [t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] if isinstance(t, list) else []


def _shown(value: Any, widget: Widget) -> str:
    if value is None:
        return ""
    if widget == "json":
        return json.dumps(value, indent=2)
    if widget == "select":
        return json.dumps(value)
    return str(value)


def param_fields(data: DagData) -> list[ParamField]:
    """One field per Param of the DAG, in the order the DAG file wrote them, defaults filled in."""
    specs: list[ParamSpec] = data.get("params_schema") or []
    defaults = data["params"]
    fields = []
    for spec in specs:
        name, schema = spec["name"], spec["schema"]
        types = _types(schema)
        kind = next((t for t in types if t != "null"), "")
        widget: Widget
        if "enum" in schema:
            widget = "select"
        elif kind == "boolean":
            widget = "checkbox"
        elif kind in ("integer", "number"):
            widget = "number"
        elif kind == "string":
            widget = "date" if schema.get("format") == "date" else "text"
        else:
            widget = "json"
        f = ParamField(name=name, label=str(schema.get("title") or name), description=str(schema.get("description") or ""),
                       widget=widget, kind=kind, nullable="null" in types, required=spec["required"])
        if widget == "select":
            # Airflow's values_display names the choices; the value itself otherwise.
            names = schema.get("values_display") or {}
            f.options = [(json.dumps(v), str(names.get(str(v), v if v is not None else "(none)"))) for v in schema["enum"]]
        if widget == "number":
            f.attrs = {"step": "1" if kind == "integer" else "any", "min": schema.get("minimum"), "max": schema.get("maximum")}
        if widget == "text":
            f.attrs = {"minlength": schema.get("minLength"), "maxlength": schema.get("maxLength")}
        if not spec["required"]:
            default = defaults.get(name)
            f.checked = bool(default)
            f.value = _shown(default, widget)
        fields.append(f)
    return fields


def _number(raw: str, kind: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        if kind == "integer":
            raise ValueError("enter a whole number") from None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("enter a number") from None
    if not math.isfinite(value):
        raise ValueError("enter a finite number")
    return value


def read_fields(fields: list[ParamField], post: QueryDict) -> dict[str, Any]:
    """The conf the form gives; each field that cannot be read keeps the text and gets its error
    (and is left out of the conf). An empty field is null when the param allows it, else left out
    (then the param's default applies, or "a value is required")."""
    conf: dict[str, Any] = {}
    for f in fields:
        if f.widget == "checkbox":
            f.checked = post.get(f.input_name) == "on"
            conf[f.name] = f.checked
            continue
        raw = post.get(f.input_name, "")
        f.value = raw
        if not raw.strip():
            if f.nullable:
                conf[f.name] = None
            elif f.widget == "text" and not f.required:
                conf[f.name] = ""
            elif f.required:
                f.error = "a value is required"
            else:
                f.error = "a value is required (empty is not allowed for this param)"
            continue
        try:
            if f.widget == "number":
                conf[f.name] = _number(raw.strip(), f.kind)
            elif f.widget in ("json", "select"):
                conf[f.name] = json.loads(raw, parse_constant=_no_constant)
            else:
                conf[f.name] = raw
        except json.JSONDecodeError as exc:
            f.error = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        except (ValueError, RecursionError) as exc:
            f.error = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
    return conf


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def prefill(fields: list[ParamField], conf: Mapping[str, Any]) -> dict[str, Any]:
    """Fields showing a conf's values (triggering again with a run's conf); returns the keys that
    are no field, for the raw JSON."""
    by_name = {f.name: f for f in fields}
    rest = {}
    for key, value in conf.items():
        f = by_name.get(key)
        if f is None:
            rest[key] = value
        elif f.widget == "checkbox":
            f.checked = bool(value)
        else:
            f.value = _shown(value, f.widget)
    return rest


def show_errors(fields: list[ParamField], errors: Mapping[str, str]) -> None:
    for f in fields:
        if f.name in errors and not f.error:
            f.error = errors[f.name]
