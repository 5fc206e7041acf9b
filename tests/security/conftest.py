"""Users per role and a run with hostile text everywhere it can go, for the security tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from runs.cli import run_dag_run_inline
from runs.models import DagRun
from tests.runs.factories import make_run

XSS = "<script>alert(1)</script>"

# Hostile text in a map key, the rendered name, a log line, an XCom value and the conf.
HOSTILE_DAG = """
@dag(dag_id="hostile", start_date=datetime(2024, 1, 1), schedule=None)
def hostile():
    @task
    def keys() -> dict:
        return {"<script>alert(1)</script>": "<script>alert(1)</script>", "plain": "x"}

    @task(map_index_template="{{ task.op_kwargs['item'][0] }}")
    def show(item) -> str:
        print("<script>alert(1)</script> in a log line")
        return item[1]

    show.expand(item=keys())


hostile()
"""


@pytest.fixture
def hostile_run(db: None, tmp_path: Path) -> DagRun:
    run = make_run(tmp_path, HOSTILE_DAG, dag_id="hostile", conf={"note": XSS})
    run = run_dag_run_inline(run, timeout=30)
    assert run.state == "success"
    return run


@pytest.fixture
def now() -> object:
    return timezone.now()
