"""Rendered arguments as stored for the Details and Rendered tabs: JSON-safe, secrets masked."""
from __future__ import annotations

import json
import re
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



SECRET_NAME = re.compile(r"password|passwd|secret|token|api_?key|private_key|credential", re.IGNORECASE)
MASK = "***"
MIN_SECRET_CHARS = 3  # shorter values would mask ordinary text all over the log


def mask_secrets(value: Any, found: set[str]) -> Any:
    """``value`` with every item under a secret-looking key replaced by MASK; collects the hidden text."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and SECRET_NAME.search(key) and item not in (None, ""):
                _collect_secret_text(item, found)
                out[key] = MASK
            else:
                out[key] = mask_secrets(item, found)
        return out
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item, found) for item in value]
    return value


def _collect_secret_text(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _collect_secret_text(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_secret_text(item, found)
    elif value is not None and not isinstance(value, bool) and len(str(value)) >= MIN_SECRET_CHARS:
        found.add(str(value))


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
