from __future__ import annotations

import functools
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment


@functools.cache
def environment() -> jinja2.Environment:
    # Sandboxed like Airflow's; StrictUndefined so a typo in a template fails the task with the
    # name of the missing variable instead of silently rendering an empty string.
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, cache_size=400)
    env.filters["ds"] = lambda d: d.strftime("%Y-%m-%d")
    return env


def render_string(template: str, context: dict[str, Any]) -> str:
    return environment().from_string(template).render(context)
