"""Shared fixtures. The database is the embedded PostgreSQL (pytest-django creates test_<name> on
it); the broker is the embedded Redis, database 15 under pytest (see settings.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client

from config import celery_app

READY_TIMEOUT_SEC = 60.0
STOP_TIMEOUT_SEC = 10.0


@dataclass
class LiveStack:
    """A scheduler and a Celery worker running as real subprocesses against the test database."""

    log_dir: Path
    worker_name: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def output(self, name: str) -> str:
        """What process `name` ("scheduler" or "worker") has printed so far."""
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM each process, then SIGKILL its whole group after STOP_TIMEOUT_SEC. Idempotent."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(STOP_TIMEOUT_SEC)
            except subprocess.TimeoutExpired:
                pass
            # The group too: a worker's pool processes must not outlive the test.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    def report(self) -> str:
        parts = []
        for name, process in self.processes.items():
            parts.append(f"----- {name} (exit code {process.poll()}) -----\n{self.output(name)}")
        return "\n".join(parts)


def _test_database_url() -> str:
    # Read after the db fixture, so this names the test database pytest-django created.
    db = connection.settings_dict
    query = {"host": db["HOST"], "port": db["PORT"], **db.get("OPTIONS", {})}
    credentials = quote(db["USER"], safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
    return f"postgres://{credentials}@/{quote(db['NAME'], safe='')}?{urlencode(query)}"


def _wait_for_worker(stack: LiveStack) -> None:
    process = stack.processes["worker"]
    for _ in range(int(READY_TIMEOUT_SEC)):
        if process.poll() is not None:
            break
        # A reply comes through the broker's pidbox, so no result backend is involved.
        if celery_app.control.ping(destination=[stack.worker_name], timeout=1.0):
            return
    stack.stop()
    pytest.fail(f"the Celery worker did not answer a ping\n{stack.report()}")


@pytest.fixture
def live_stack(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., LiveStack]]:
    """A factory: `live_stack(dags_folder=..., scheduler=True, worker=True, concurrency=2, env={})`.

    Depends on transactional_db: the children are other processes, so they only see rows
    that are committed. Stopped at teardown; on a failing test their output is printed.
    """
    stacks: list[LiveStack] = []

    def start(
        *,
        dags_folder: Path | str | None = None,
        scheduler: bool = True,
        worker: bool = True,
        concurrency: int = 2,
        env: dict[str, str] | None = None,
    ) -> LiveStack:
        # Tasks left in the test broker by an earlier test would otherwise run against this one.
        celery_app.control.purge()
        log_dir = tmp_path / f"live_stack_{len(stacks)}"
        log_dir.mkdir()
        stack = LiveStack(
            log_dir=log_dir,
            worker_name=f"live-{uuid.uuid4().hex[:8]}@{socket.gethostname()}",
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": _test_database_url(),
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                "DAGS_FOLDER": str(dags_folder or settings.DAGS_FOLDER),
                "PYTHONUNBUFFERED": "1",
                **(env or {}),
            },
        )
        stacks.append(stack)
        commands = {}
        if scheduler:
            commands["scheduler"] = [sys.executable, "manage.py", "scheduler"]
        if worker:
            commands["worker"] = [
                *(sys.executable, "-m", "celery", "-A", "config", "worker"),
                *("--pool", "prefork", "--concurrency", str(concurrency)),
                *("-Q", celery_app.conf.task_default_queue, "-n", stack.worker_name),
                # Nothing to sync with: each test has its own worker.
                *("--without-mingle", "--without-gossip", "--loglevel", "INFO"),
            ]
        for name, argv in commands.items():
            with open(log_dir / f"{name}.log", "wb") as log:
                stack.processes[name] = subprocess.Popen(
                    argv,
                    cwd=settings.BASE_DIR,
                    env=stack.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        if worker:
            _wait_for_worker(stack)
        return stack

    yield start

    for stack in stacks:
        stack.stop()
        # Shown by pytest only when the test failed.
        print(stack.report())



def make_user(name: str, group: str | None) -> User:
    """A user in the Viewer or Operator group (None: in no group)."""
    user = User.objects.create_user(username=name, password="pw-" + name + "-long")
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def operator_client(db: None) -> Client:
    client = Client()
    client.force_login(make_user("op", "Operator"))
    return client


@pytest.fixture
def viewer_client(db: None) -> Client:
    client = Client()
    client.force_login(make_user("viewer", "Viewer"))
    return client
