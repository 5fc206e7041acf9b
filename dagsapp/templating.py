"""Rendering the DAG author's Jinja templates (template fields, ``map_index_template``).

Templates come from DAG files and are rendered in the scheduler (instance names) and in the
workers, so one template must never be able to stop or stall a process: rendering is sandboxed
(as Airflow's) and bounded in time, in output size, in ``range()`` length and in the size of
numbers and sequences that ``*`` and ``**`` build. Breaking a limit raises
``TemplateLimitError``, which fails that name or that try only.
"""
from __future__ import annotations

import contextvars
import functools
import operator
import time
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

# Generous for a name or a command line; small enough that no template holds a process for long.
MAX_RENDER_SECONDS = 2.0
MAX_OUTPUT_CHARS = 1_000_000
MAX_RANGE = 100_000
MAX_INT_BITS = 4096
MAX_SEQUENCE_ITEMS = 1_000_000

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("template_deadline", default=None)


class TemplateLimitError(jinja2.TemplateError):
    """A template went over a rendering limit (time, output, range, size of a value)."""


def _tick() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimitError(f"template rendering took more than {MAX_RENDER_SECONDS:g} s")


def _limited_range(*args: int) -> Iterator[int]:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise TemplateLimitError(f"range() of {len(r)} items in a template; at most {MAX_RANGE}")
    for i in r:
        _tick()
        yield i


def _sized(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimitError(f"a number of more than {MAX_INT_BITS} bits in a template")
    return value


class LimitedEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: jinja2.runtime.Context, op: str, left: Any, right: Any) -> Any:
        _tick()
        if op == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 \
                    and right * max(abs(left), 2).bit_length() > MAX_INT_BITS:
                raise TemplateLimitError(f"{left} ** {right} in a template is too large")
            return _sized(operator.pow(left, right))
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_SEQUENCE_ITEMS:
                raise TemplateLimitError(f"a sequence of {len(seq) * times} items built in a template")
        return _sized(operator.mul(left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)


@functools.cache
def environment() -> jinja2.Environment:
    # Sandboxed like Airflow's; StrictUndefined so a typo in a template fails the task with the
    # name of the missing variable instead of silently rendering an empty string.
    env = LimitedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, cache_size=400)
    env.filters["ds"] = lambda d: d.strftime("%Y-%m-%d")
    env.globals["range"] = _limited_range
    return env


@functools.lru_cache(maxsize=512)
def compiled(source: str) -> jinja2.Template:
    # Rendered for every mapped instance: parsed once per process.
    return environment().from_string(source)


def render(template: jinja2.Template, context: dict[str, Any]) -> str:
    """Render within the limits: at most MAX_RENDER_SECONDS and MAX_OUTPUT_CHARS."""
    token = _deadline.set(time.monotonic() + MAX_RENDER_SECONDS)
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateLimitError(f"template output over {MAX_OUTPUT_CHARS} characters")
            _tick()
            out.append(chunk)
        return "".join(out)
    finally:
        _deadline.reset(token)


def render_string(source: str, context: dict[str, Any]) -> str:
    return render(compiled(source), context)
