"""Whether a value can be stored in a PostgreSQL ``jsonb`` column: checked before it is written.

A trigger's conf, a task's return value and a DAG file's values (params, doc_md, tags) come from users. Python's ``json`` module reads
and writes NaN and Infinity, strings with a lone surrogate and any depth of nesting; PostgreSQL
refuses the first three (and NUL characters), and both sides run out of stack on the last.
Checked here, the user gets a sentence naming what is wrong instead of a database error.
"""
from __future__ import annotations

import math
from typing import Any

# Far beyond any real conf or result, well within Python's recursion limit and PostgreSQL's stack.
MAX_JSON_DEPTH = 500


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which PostgreSQL cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains a lone surrogate {text[exc.start]!r}, which is not valid Unicode text"
    return None


def json_problem(value: Any) -> str | None:
    """What makes ``value`` unstorable as JSON in PostgreSQL ("contains NaN, ..."), or None."""
    found = json_problem_at(value)
    return found[1] if found else None


def json_problem_at(value: Any) -> tuple[str, str] | None:
    """``(where, what)``: the path of the first unstorable part (``params.t``, ``[3]``; "" for the
    value itself) and what is wrong with it; None if the whole value can be stored.

    Iterative, so a value nested too deep is reported rather than overflowing the stack here.
    Types JSON does not know are left to ``json.dumps``, which names them.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, float):
            if math.isnan(item):
                return path, "contains NaN, which JSON cannot store"
            if math.isinf(item):
                return path, "contains Infinity, which JSON cannot store"
        elif isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return path, problem
        elif isinstance(item, (dict, list, tuple)):
            if depth > MAX_JSON_DEPTH:
                return path, f"is nested more than {MAX_JSON_DEPTH} levels deep"
            if isinstance(item, dict):
                for key, child in reversed(list(item.items())):
                    child_path = f"{path}.{key}" if path else str(key)
                    stack.append((child, depth + 1, child_path))
                    stack.append((key, depth, f"the key {child_path!r}"))
            else:
                stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None
