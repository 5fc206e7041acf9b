"""Who is acting, and the audit log of what they did.

An action is recorded where it is done, in ``runs/services.py``, so the dashboard, the two APIs
and the CLI record each action once and the same way. Who acts is set around the call, not passed
through every function: the web process's ``audit_actor_middleware`` for each request (the user
is read when the action is recorded, after the REST API's token authentication has set it), the
CLI's commands with ``acting_as(cli_actor())``. The scheduler's own work (scheduled runs, retries)
runs with no actor and is not recorded: nobody took an action.
"""
from __future__ import annotations

import contextlib
import contextvars
import getpass
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse

from runs.models import AuditEvent, AuditLog, AuditSource


@dataclass(frozen=True)
class Actor:
    username: str
    source: AuditSource
    remote_addr: str | None = None


_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("audit_request", default=None)
_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("audit_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def cli_actor() -> Actor:
    """The operating-system user who runs ``manage.py`` (as Airflow's CLI logs it)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        name = "unknown"
    return Actor(username=name, source=AuditSource.CLI)


def _request_actor(request: HttpRequest) -> Actor:
    user = getattr(request, "user", None)
    name = user.get_username() if user is not None and user.is_authenticated else "anonymous"
    source = AuditSource.API if request.path_info.startswith("/api/") else AuditSource.UI
    # REMOTE_ADDR, not X-Forwarded-For: a header any client can set would let it choose its address.
    return Actor(username=name, source=source, remote_addr=request.META.get("REMOTE_ADDR") or None)


def current_actor() -> Actor | None:
    actor = _actor.get()
    if actor is not None:
        return actor
    request = _request.get()
    return _request_actor(request) if request is not None else None


def audit_actor_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Every request's actions are recorded as its user's, from its address."""

    def middleware(request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return get_response(request)
        finally:
            _request.reset(token)

    return middleware


def record(event: AuditEvent, *, dag_id: str = "", run_id: str = "", task_id: str = "", map_index: int | None = None,
           count: int | None = None, extra: dict[str, Any] | None = None) -> AuditLog | None:
    """Write one audit row, in the caller's transaction (an action rolled back leaves no row,
    as does the REST API's dry run). Nothing without an actor: the scheduler's own work."""
    actor = current_actor()
    if actor is None:
        return None
    return AuditLog.objects.create(
        event=event, owner=actor.username[:150], source=actor.source, remote_addr=actor.remote_addr, dag_id=dag_id,
        run_id=run_id, task_id=task_id, map_index=map_index, count=count, extra=extra or {})
