"""The peer harness of ``make bench-peers`` without running Airflow: the DAG file it hands
Airflow, the configuration of the Airflow deployment, and the table of ratios.

Airflow is not installed in the project's virtualenv, so the DAG file runs against a stand-in
``airflow.sdk`` that records the tasks and how they are wired. Milliseconds.
"""
from __future__ import annotations

import os
import runpy
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from bench import peers
from bench.peer_airflow import DAGS_FOLDER, Postgres, deployment_env

DAG_FILE = DAGS_FOLDER / "bench_peer_map.py"


class _Call:
    def __init__(self, task: _Task, kwargs: dict[str, Any], mapped: dict[str, Any] | None = None) -> None:
        self.task, self.kwargs, self.mapped = task, kwargs, mapped


class _Task:
    def __init__(self, fn: Any) -> None:
        self.fn, self.partial_kwargs = fn, {}
        self.calls: list[_Call] = []

    def __call__(self, *args: Any) -> _Call:
        call = _Call(self, {"args": args})
        self.calls.append(call)
        return call

    def partial(self, **kwargs: Any) -> _Task:
        self.partial_kwargs = kwargs
        return self

    def expand(self, **kwargs: Any) -> _Call:
        call = _Call(self, self.partial_kwargs, mapped=kwargs)
        self.calls.append(call)
        return call


@pytest.fixture
def fake_airflow(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stand-in ``airflow.sdk`` whose ``@dag`` runs the DAG function and keeps its tasks."""
    seen: dict[str, Any] = {"tasks": {}}

    def task(fn: Any) -> _Task:
        seen["tasks"][fn.__name__] = _Task(fn)
        return seen["tasks"][fn.__name__]

    def dag(**dag_kwargs: Any) -> Any:
        def wrap(fn: Any) -> Any:
            def build() -> None:
                seen["dag"] = dag_kwargs
                fn()
            return build
        return wrap

    sdk = types.ModuleType("airflow.sdk")
    sdk.dag, sdk.task = dag, task  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow", types.ModuleType("airflow"))
    monkeypatch.setitem(sys.modules, "airflow.sdk", sdk)
    return seen


class PeerDagFileTests:
    def test_it_builds_the_map_of_bench_throughput(self, fake_airflow: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BENCH_PEER_N", "1000")
        runpy.run_path(str(DAG_FILE))
        tasks = fake_airflow["tasks"]
        assert fake_airflow["dag"]["dag_id"] == "bench_peer_map"
        assert fake_airflow["dag"]["params"] == {"n": 1000}
        assert set(tasks) == {"numbers", "add", "total"}
        (mapped,) = tasks["add"].calls
        assert mapped.kwargs == {"y": 10} and mapped.mapped is not None
        assert mapped.mapped["x"].task is tasks["numbers"]
        (reduce,) = tasks["total"].calls
        assert reduce.kwargs["args"] == (mapped,)

    def test_it_takes_n_from_the_run_conf(self, fake_airflow: dict[str, Any]) -> None:
        runpy.run_path(str(DAG_FILE))
        tasks = fake_airflow["tasks"]
        assert tasks["numbers"].fn(params={"n": 100}) == list(range(100))
        assert tasks["add"].fn(3, 10) == 13
        assert tasks["total"].fn([1, 2]) == 3


class AirflowDeploymentConfigTests:
    def env(self) -> dict[str, str]:
        pg = Postgres(socket_dir=Path("/srv/var/pgdata"), port=5432)
        return deployment_env(base={"PATH": "/usr/bin", "DATABASE_URL": "postgres://ours", "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"},
                              venv=Path("/srv/var/peers/airflow3"), home=Path("/srv/home"), pg=pg, api_port=8123, n=1000)

    def test_it_runs_the_local_executor_with_parallelism_2(self) -> None:
        env = self.env()
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__CORE__PARALLELISM"] == "2"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert "DATABASE_URL" not in env

    def test_it_points_airflow_at_its_database_on_the_embedded_server(self) -> None:
        env = self.env()
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == \
            "postgresql+psycopg2://postgres@/airflow_peer?host=/srv/var/pgdata&port=5432"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+asyncpg://postgres@/airflow_peer?host=")

    def test_it_sends_tasks_to_the_api_server_it_starts(self) -> None:
        env = self.env()
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8123/execution/"
        assert env["AIRFLOW__API__PORT"] == "8123"
        assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 32
        assert env["PATH"].startswith("/srv/var/peers/airflow3/bin:")


class PeerTableTests:
    def test_it_gives_each_peer_its_ratio_to_ours_and_its_target_at_1000(self) -> None:
        results = {
            "dagsapp": {"100": [{"seconds": 0.4}, {"seconds": 0.5}, {"seconds": 0.6}], "1000": [{"seconds": 2.0, "cpu_s": 3.0}]},
            "airflow3_scheduler": {"100": {"seconds": 40.0}, "1000": {"seconds": 90.0, "cpu_s": 150.0}},
            "prefect": {"100": {"error": "prefect flow exited 1: boom"}, "1000": {"seconds": 50.0}},
        }
        rows = {(r["system"], r["n"]): r for r in peers.summarize(results, (100, 1000))}
        assert rows[("dagsapp", 100)]["seconds"] == 0.5
        assert rows[("airflow3_scheduler", 100)]["ratio"] == 80.0 and rows[("airflow3_scheduler", 100)]["target"] is None
        assert rows[("airflow3_scheduler", 1000)]["ratio"] == 45.0
        assert rows[("airflow3_scheduler", 1000)]["status"] == "FAIL"
        assert rows[("airflow3_scheduler", 1000)]["cpu_ratio"] == 50.0 and rows[("airflow3_scheduler", 100)]["cpu_ratio"] is None
        assert rows[("prefect", 1000)]["status"] == "pass" and rows[("prefect", 1000)]["instances_per_s"] == 20.0
        assert rows[("prefect", 100)]["status"].startswith("n/a (prefect flow exited 1")
        printed = peers.table(list(rows.values()))
        assert "Airflow 3.3.2 scheduler, LocalExecutor" in printed and ">= 50x FAIL" in printed and "50.0x" in printed


class CpuAccountingTests:
    def test_it_counts_the_cpu_of_a_child_that_has_exited_and_been_reaped(self) -> None:
        import subprocess

        before = peers.tree_cpu_seconds([os.getpid()])
        subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"],
                       check=True)
        assert peers.tree_cpu_seconds([os.getpid()]) - before >= 0.3


class ListRunsOutputTests:
    def test_it_reads_the_runs_past_the_log_lines_on_stdout(self) -> None:
        from bench.peer_airflow import _json_or_empty

        out = ('2026-12-01T11:04:54Z [warning  ] Using `httpx` [py.warnings]\n'
               '[{"dag_id": "bench_peer_map", "run_id": "bench_100", "state": "success"}]\n')
        assert _json_or_empty(out) == [{"dag_id": "bench_peer_map", "run_id": "bench_100", "state": "success"}]
        assert _json_or_empty("[warning  ] no runs\n") == []
