"""Shared fixtures. The database is the embedded PostgreSQL (pytest-django creates test_<name> on
it); the broker is the embedded Redis, database 15 under pytest (see settings.py)."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client

from config import celery_app
from runs.processes import ProcessGroup, dag_processor_argv, scheduler_argv, triggerer_argv, worker_answers, worker_argv

READY_TIMEOUT_SEC = 60.0


@dataclass
class LiveStack(ProcessGroup):
    """A scheduler and a Celery worker running as real subprocesses against the test database;
    `output("worker")` is what one has printed so far, `stop()` is idempotent."""

    worker_name: str = ""


def _test_database_url() -> str:
    # Read after the db fixture, so this names the test database pytest-django created.
    db = connection.settings_dict
    query = {"host": db["HOST"], "port": db["PORT"], **db.get("OPTIONS", {})}
    credentials = quote(db["USER"], safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
    return f"postgres://{credentials}@/{quote(db['NAME'], safe='')}?{urlencode(query)}"


def _wait_for_worker(stack: LiveStack) -> None:
    if worker_answers(celery_app.control, node=stack.worker_name, process=stack.processes["worker"], timeout=READY_TIMEOUT_SEC):
        return
    stack.stop()
    pytest.fail(f"the Celery worker did not answer a ping\n{stack.report()}")


@pytest.fixture
def live_stack(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., LiveStack]]:
    """A factory: `live_stack(dags_folder=..., scheduler=True, worker=True, concurrency=2, env={}, triggerer=False)`.

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
        triggerer: bool = False,
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
                **(env or {}),
            },
        )
        stacks.append(stack)
        if scheduler:
            stack.start("dag_processor", dag_processor_argv())
            stack.start("scheduler", scheduler_argv())
        if triggerer:
            stack.start("triggerer", triggerer_argv())
        if worker:
            stack.start("worker", worker_argv(
                concurrency=concurrency, queue=celery_app.conf.task_default_queue, node=stack.worker_name,
                # Nothing to sync with: each test has its own worker.
                options=("--without-mingle", "--without-gossip"),
            ))
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """This run's Prometheus counters: settings.py gave it a folder of its own under var/."""
    folder = Path(settings.PROMETHEUS_MULTIPROC_DIR)
    if folder.parent.name == "prometheus-test" and folder.name == str(os.getpid()):
        shutil.rmtree(folder, ignore_errors=True)
