"""Fixed values written into raw SQL text: states and XCom keys, taken from their enums and constants.

The hot-path statements keep their states as literals in the SQL text, not as parameters: the
text stays the same as before (and as the partial indexes' predicates, which the planner must
match). They are interpolated once, at import time, from ``TaskInstanceState`` and friends, so
renaming a state changes the SQL with it instead of silently matching no row.
"""
from __future__ import annotations

import re

_PLAIN = re.compile(r"[a-z_]+")


def literal(value: str) -> str:
    """``'value'`` as an SQL string literal; only plain lower-case words, which need no escaping."""
    text: str = getattr(value, "value", value)  # an enum member by its value, not its name
    if not _PLAIN.fullmatch(text):
        raise ValueError(f"literal() takes a plain lower-case word (a state, an XCom key), not {text!r}")
    return f"'{text}'"


def literals(*values: str) -> str:
    """``'a', 'b'``: a list of literals for ``IN (...)``."""
    return ", ".join(literal(v) for v in values)
