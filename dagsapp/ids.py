"""The one rule for every id a DAG author controls: DAG ids, task ids and task group ids.

Airflow's ``KEY_REGEX`` (``^[\\w.-]+$``) and at most 250 characters, the width of the id columns.
A group's id is joined to its children's ids with ``.``, so a group id may not contain one, and
the limit applies to the full id, group prefixes included: a task id that only grows too long
inside its groups is refused when the DAG file is parsed, not when a run is triggered.
These ids end up in URLs, DOM ids, Graphviz sources and SQL, which all rely on this rule.
"""
from __future__ import annotations

import re
from typing import Literal

MAX_ID_LENGTH = 250
# fullmatch: with re.match and ``$``, a trailing newline would pass.
_KEY = re.compile(r"[\w.-]+")
_GROUP_KEY = re.compile(r"[\w-]+")

IdKind = Literal["dag_id", "task_id", "group_id"]


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:60]) + f"... ({len(value)} characters)"


def _head(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:60]) + "..."


def validate_id(call: str, kind: IdKind, value: object, *, full_id: str | None = None) -> str:
    """``value`` if it is a valid ``kind``, else TypeError/ValueError naming ``call`` and the id.

    ``full_id`` is the id with its group prefixes, when they add to the length.
    """
    if not isinstance(value, str) or not value:
        raise TypeError(f"{call}() needs a non-empty string {kind}, not {value!r}")
    if kind == "group_id":
        if not _GROUP_KEY.fullmatch(value):
            raise ValueError(f"{call}(): {kind} {_shown(value)} may only contain letters, digits, '_' and '-'"
                             " (a '.' joins a group's id to its tasks' ids)")
    elif not _KEY.fullmatch(value):
        raise ValueError(f"{call}(): {kind} {_shown(value)} may only contain letters, digits, '_', '-' and '.',"
                         f" at most {MAX_ID_LENGTH} characters")
    full = full_id if full_id is not None else value
    if len(full) > MAX_ID_LENGTH:
        subject = _head(value) if full == value else f"{_head(value)} makes the full id {_head(full)}, which"
        raise ValueError(f"{call}(): {kind} {subject} is {len(full)} characters long;"
                         f" ids may have at most {MAX_ID_LENGTH}, group prefixes included")
    return value
