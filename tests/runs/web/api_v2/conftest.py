"""Users per role, their tokens, and a Django test client that sends one as Bearer."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from runs.models import DagRun, TaskInstance, TaskInstanceLog, XCom
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from runs.web.api_v2.auth import issue_token
from tests.conftest import make_user


@pytest.fixture
def token_for(db: None) -> Callable[[str | None], str]:
    """A token for a new user in that group ("Viewer", "Operator", "Admin"; None: in none)."""

    def make(group: str | None) -> str:
        user: User = make_user(f"u-{(group or 'none').lower()}-{User.objects.count()}", group)
        return issue_token(user)

    return make


class ApiClient(Client):
    """A test client that sends a Bearer token (bodies: pass content_type="application/json")."""

    def __init__(self, token: str | None) -> None:
        super().__init__(headers={"Authorization": f"Bearer {token}"} if token else {})


@pytest.fixture
def api(token_for: Callable[[str | None], str]) -> Callable[[str | None], ApiClient]:
    return lambda group: ApiClient(token_for(group))


API_DAG = """\
from __future__ import annotations
from datetime import datetime
from dagsapp.sdk import dag, task


@dag(dag_id="api_add", start_date=datetime(2024, 1, 1), schedule=None, tags=["math", "api"])
def api_add():
    @task(map_index_template="{{ task.op_kwargs['x'] }}")
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(add.partial(y=10).expand(x=[1, 2, 3, 4, 5]))


api_add()


@dag(dag_id="api_other", start_date=datetime(2024, 1, 1), schedule="@daily", tags=["api"])
def api_other():
    @task
    def only() -> int:
        return 1

    only()


api_other()
"""

# (state, duration) of add[0..4] in the ``mapped_run`` fixture.
ADD_INSTANCES = [("success", 3.0), ("success", 1.0), ("failed", 5.0), ("running", None), ("success", 2.0)]


@pytest.fixture
def parsed_api_dags(db: None, tmp_path: Path) -> Path:
    (tmp_path / "api_dags.py").write_text(API_DAG)
    process_dags_folder(tmp_path)
    return tmp_path


@pytest.fixture
def mapped_run(parsed_api_dags: Path) -> DagRun:
    """A running run of api_add with add[0..4] expanded in the states of ADD_INSTANCES; add[1]
    has a result and a log of its first try."""
    run = create_dag_run(dag_id="api_add", run_id="r1", logical_date=timezone.now(), conf={"k": "v"})
    DagRun.objects.filter(pk=run.pk).update(state="running", start_date=timezone.now())
    run.refresh_from_db()
    TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=-1).delete()
    now = timezone.now()
    TaskInstance.objects.bulk_create([
        TaskInstance(dag_run=run, task_id="add", map_index=i, state=state, try_number=1, rendered_map_index=str(i + 1),
                     start_date=now, end_date=now if duration is not None else None, duration=duration, item_identity=f"id-{i}")
        for i, (state, duration) in enumerate(ADD_INSTANCES)
    ])
    XCom.objects.create(dag_run=run, task_id="add", map_index=1, key="return_value", value=12)
    ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=1)
    TaskInstanceLog.objects.create(task_instance=ti, try_number=1, text="adding 2 + 10\nreturned 12\n")
    return run
