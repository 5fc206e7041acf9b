"""Rendered arguments as stored for the Details and Rendered tabs: JSON-safe and short (secrets are
masked by ``dagsapp.secrets``, the rule the scheduler's naming uses too)."""
from __future__ import annotations

import json
from typing import Any


def json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): json_safe(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [json_safe(v) for v in value]
        return repr(value)


MAX_DISPLAY_ITEMS = 1000


def shorten_for_display(value: Any, *, max_chars: int) -> Any:
    """A copy small enough to store for the Rendered tab: long strings cut with a marker saying
    how much is left out, long lists and dicts cut to MAX_DISPLAY_ITEMS entries. The task itself
    received the whole value; only what is stored for display is shortened."""
    if isinstance(value, str):
        return value if len(value) <= max_chars else f"{value[:max_chars]}… ({len(value) - max_chars:,} more characters not shown)"
    if isinstance(value, list):
        head = [shorten_for_display(v, max_chars=max_chars) for v in value[:MAX_DISPLAY_ITEMS]]
        return head if len(value) <= MAX_DISPLAY_ITEMS else [*head, f"… ({len(value) - MAX_DISPLAY_ITEMS:,} more items not shown)"]
    if isinstance(value, dict):
        items = list(value.items())
        out = {k: shorten_for_display(v, max_chars=max_chars) for k, v in items[:MAX_DISPLAY_ITEMS]}
        if len(items) > MAX_DISPLAY_ITEMS:
            out["…"] = f"{len(items) - MAX_DISPLAY_ITEMS:,} more keys not shown"
        return out
    return value
