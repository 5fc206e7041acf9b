"""Which values are secret during a try, and hiding them: one rule for the scheduler and the worker.

A value is secret when it is passed under a name that looks secret (``SECRET_NAME``), or when
the task registers it with ``mask_secret(value)`` while it runs. Whoever stores text a Viewer
can read (a name, a log line, a rendered field, an XCom's display copy) redacts every secret it
knows from it first. Pure: the scheduler (naming) and the worker (everything else) both use it.
"""
from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Callable, Iterator
from typing import Any

SECRET_NAME = re.compile(r"password|passwd|secret|token|api_?key|private_key|credential", re.IGNORECASE)
MASK = "***"
MIN_SECRET_CHARS = 3  # shorter values would mask ordinary text all over the log


class SecretRegistry:
    """The secrets of one try: what ``mask_secret`` registered, told to ``on_add`` as they come
    (the try's log writer, so the rest of the log is redacted at once)."""

    def __init__(self, *, on_add: Callable[[set[str]], None] | None = None) -> None:
        self.values: set[str] = set()
        self.on_add = on_add

    def add(self, value: Any) -> None:
        found: set[str] = set()
        collect_secret_text(value, found)
        new = found - self.values
        if new:
            self.values |= new
            if self.on_add is not None:
                self.on_add(new)


_current: contextvars.ContextVar[SecretRegistry | None] = contextvars.ContextVar("dagsapp_secrets", default=None)


@contextlib.contextmanager
def secrets_scope(registry: SecretRegistry) -> Iterator[SecretRegistry]:
    """Where ``mask_secret`` registers: set by the worker around a try's own code."""
    token = _current.set(registry)
    try:
        yield registry
    finally:
        _current.reset(token)


def mask_secret(value: Any) -> None:
    """Hide ``value`` (a string, or every string and number inside a list or dict) from the rest of
    this try's log, its instance name, rendered fields and the display of its result. Airflow's
    function of the same name; called outside a running task it does nothing."""
    registry = _current.get()
    if registry is not None:
        registry.add(value)


def collect_secret_text(value: Any, found: set[str]) -> None:
    """The text of every leaf of ``value`` long enough to be redacted."""
    if isinstance(value, dict):
        for item in value.values():
            collect_secret_text(item, found)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            collect_secret_text(item, found)
    elif value is not None and not isinstance(value, bool) and len(str(value)) >= MIN_SECRET_CHARS:
        found.add(str(value))


def secret_kwargs_text(kwargs: dict[str, Any]) -> set[str]:
    """The text of the values passed under secret-looking names, nested dicts included."""
    found: set[str] = set()
    mask_secrets(kwargs, found)
    return found


def mask_secrets(value: Any, found: set[str]) -> Any:
    """``value`` with every item under a secret-looking key replaced by MASK; collects the hidden text."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and SECRET_NAME.search(key) and item not in (None, ""):
                collect_secret_text(item, found)
                out[key] = MASK
            else:
                out[key] = mask_secrets(item, found)
        return out
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item, found) for item in value]
    return value


def redact(text: str, secrets: set[str] | frozenset[str] | list[str]) -> str:
    """``text`` with every secret replaced by MASK, longest first (a secret containing another is hidden whole)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any, secrets: set[str] | frozenset[str] | list[str]) -> tuple[Any, bool]:
    """A JSON value with the secrets redacted from every string in it, dict keys included, and
    whether anything was (so a caller knows if a masked copy is needed)."""
    if not secrets:
        return value, False
    if isinstance(value, str):
        out = redact(value, secrets)
        return out, out != value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (MASK, True) if str(value) in secrets else (value, False)
    if isinstance(value, dict):
        masked: dict[Any, Any] = {}
        changed = False
        for key, item in value.items():
            new_key, key_changed = redact_value(key, secrets) if isinstance(key, str) else (key, False)
            masked[new_key], item_changed = redact_value(item, secrets)
            changed = changed or key_changed or item_changed
        return masked, changed
    if isinstance(value, (list, tuple)):
        pairs = [redact_value(item, secrets) for item in value]
        return [v for v, _ in pairs], any(c for _, c in pairs)
    return value, False


def current_secrets() -> set[str]:
    """The secrets the running try knows so far (empty outside a try)."""
    registry = _current.get()
    return set(registry.values) if registry is not None else set()
