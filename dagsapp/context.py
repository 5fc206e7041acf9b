from __future__ import annotations

import contextvars
from typing import Any

Context = dict[str, Any]

_current_context: contextvars.ContextVar[Context | None] = contextvars.ContextVar("dagsapp_context", default=None)


def get_current_context() -> Context:
    """The running task instance's template context, as Airflow's function of the same name."""
    ctx = _current_context.get()
    if ctx is None:
        raise RuntimeError("get_current_context() can only be called while a task instance runs")
    return ctx


def set_current_context(ctx: Context | None) -> contextvars.Token[Context | None]:
    return _current_context.set(ctx)


def reset_current_context(token: contextvars.Token[Context | None]) -> None:
    _current_context.reset(token)
