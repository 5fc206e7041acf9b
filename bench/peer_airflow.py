"""Apache Airflow as a running deployment: its scheduler with LocalExecutor, for ``make bench-peers``.

Airflow 3 runs a task through its API server: the LocalExecutor's worker processes start the
Task SDK's supervisor, which fetches the task's context and reports its state over the
execution API (``[core] execution_api_server_url``). So the deployment is three processes:
``airflow api-server``, ``airflow dag-processor`` and ``airflow scheduler`` (LocalExecutor,
``parallelism`` 2, as many task processes as our worker has), on the database ``airflow_peer``
of the checkout's embedded PostgreSQL (the server ours runs on, dropped and migrated afresh
at every start). Runs are triggered with ``airflow dags trigger`` and waited for by reading
the run's row (a CLI call per poll would cost seconds of CPU each on this machine); the CLI's
``airflow dags list-runs`` confirms the final state. Logs: var/peers/logs/airflow3-*.log.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.env import BASE_DIR
from runs.processes import ProcessGroup

DATABASE = "airflow_peer"
DAG_ID = "bench_peer_map"
DAGS_FOLDER = BASE_DIR / "bench" / "peer_files" / "airflow_dags"
PARALLELISM = 2
START_TIMEOUT_SEC = 180.0
CLI_TIMEOUT_SEC = 300.0
FINAL_STATES = ("success", "failed")


@dataclass(frozen=True)
class Postgres:
    """Where the embedded server listens (a unix socket directory and port) and as whom."""

    socket_dir: Path
    port: int
    user: str = "postgres"

    def sqlalchemy_url(self, driver: str = "psycopg2") -> str:
        return (f"postgresql+{driver}://{quote(self.user)}@/{DATABASE}"
                f"?host={quote(str(self.socket_dir))}&port={self.port}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deployment_env(*, base: Mapping[str, str], venv: Path, home: Path, pg: Postgres, api_port: int, n: int) -> dict[str, str]:
    """The environment of every Airflow process of the deployment (its whole configuration)."""
    env = {k: v for k, v in base.items() if not k.startswith(("DJANGO", "DATABASE_URL", "CELERY", "AIRFLOW"))}
    return {
        **env,
        "PATH": f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(n, 1024)),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # The Task SDK's supervisor reports to this; the API server below serves it.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg.sqlalchemy_url("psycopg2"),
        # Airflow 3 also opens an async engine; derived from the above it would lose the socket.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": pg.sqlalchemy_url("asyncpg"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "BENCH_PEER_N": str(n),
    }


def recreate_database(pg: Postgres) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=str(pg.socket_dir), port=pg.port, user=pg.user, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


class AirflowDeployment:
    """``airflow api-server``, ``dag-processor`` and ``scheduler`` started, used and stopped together."""

    def __init__(self, *, venv: Path, home: Path, log_dir: Path, pg: Postgres, n: int,
                 cpu_seconds: Callable[[list[int]], float] | None = None) -> None:
        self.venv, self.home, self.pg = venv, home, pg
        # CPU seconds used so far by the deployment's process trees (and whatever the caller adds).
        self.cpu_seconds = cpu_seconds
        self.api_port = free_port()
        self.env = deployment_env(base=os.environ, venv=venv, home=home, pg=pg, api_port=self.api_port, n=n)
        self.log_dir = log_dir
        # Airflow's scheduler waits for its executor's task processes on SIGTERM.
        self.group = ProcessGroup(log_dir, self.env, stop_timeout=60.0)

    def airflow(self, *args: str, timeout: float = CLI_TIMEOUT_SEC, log: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.venv / "bin" / "airflow"), *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if log is not None:
            (self.log_dir / f"{log}.log").write_text(f"$ airflow {' '.join(args)}\n{proc.stdout}\n----- stderr -----\n{proc.stderr}")
        return proc

    def start(self) -> dict[str, float]:
        """Fresh database and home, migrated; the three processes up and the DAG parsed. Returns timings."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        recreate_database(self.pg)
        t0 = time.perf_counter()
        proc = self.airflow("db", "migrate", log="airflow3-db-migrate")
        if proc.returncode != 0:
            raise RuntimeError(f"airflow db migrate exited {proc.returncode}: {_last_line(proc)} (see {self.log_dir}/airflow3-db-migrate.log)")
        migrate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        airflow_bin = str(self.venv / "bin" / "airflow")
        self.group.start("airflow3-api-server", [airflow_bin, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port),
                                                 "--workers", "1"], cwd=self.home)
        self.group.start("airflow3-dag-processor", [airflow_bin, "dag-processor"], cwd=self.home)
        self.group.start("airflow3-scheduler", [airflow_bin, "scheduler"], cwd=self.home)
        self._wait("the API server to answer", self._api_healthy)
        self._wait(f"the DAG processor to store {DAG_ID}", self._dag_stored)
        return {"db_migrate_s": migrate_s, "start_s": time.perf_counter() - t0}

    def stop(self) -> None:
        self.group.stop()

    def run(self, n: int, *, run_id: str, timeout: float) -> dict[str, Any]:
        """Trigger one run of ``n`` mapped instances from the CLI and wait for it to end."""
        pids = [p.pid for p in self.group.processes.values()]
        cpu0 = self.cpu_seconds(pids) if self.cpu_seconds else None
        t0_wall = time.time()
        t0 = time.perf_counter()
        proc = self.airflow("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps({"n": n}), log=f"airflow3-trigger-{run_id}")
        trigger_cli_s = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"airflow dags trigger exited {proc.returncode}: {_last_line(proc)}")
        deadline = time.monotonic() + timeout
        while (row := self._run_row(run_id)) is None or row["state"] not in FINAL_STATES:
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"Airflow run {run_id} ({n} instances) not finished within {timeout:.0f} s: "
                                   f"{self._ti_states(run_id)} (logs in {self.log_dir})")
            time.sleep(0.25)
        # The trigger and list-runs commands are clients, as our in-process trigger is: not counted.
        cpu_s = self.cpu_seconds(pids) - cpu0 if self.cpu_seconds and cpu0 is not None else None
        listed = self.airflow("dags", "list-runs", DAG_ID, "--output", "json", log=f"airflow3-list-runs-{run_id}")
        cli_state = next((r.get("state") for r in _json_or_empty(listed.stdout) if r.get("run_id") == run_id), None)
        states = self._ti_states(run_id)
        if row["state"] != "success" or states.get("success") != n + 2:
            raise RuntimeError(f"Airflow run {run_id} ended {row['state']} with instance states {states}")
        return {
            # The run's own timestamps (written by Airflow): from the row the trigger created to its end.
            "seconds": (row["end_date"] - row["queued_at"]).total_seconds(),
            "run_start_to_end_s": (row["end_date"] - row["start_date"]).total_seconds(),
            # From just before `airflow dags trigger` started (its start-up included) to the run's end.
            "trigger_cli_to_end_s": row["end_date"].timestamp() - t0_wall,
            "trigger_cli_s": trigger_cli_s, "cpu_s": cpu_s,
            "queued_at": row["queued_at"].isoformat(), "start_date": row["start_date"].isoformat(),
            "end_date": row["end_date"].isoformat(), "cli_state": cli_state, "instance_states": states,
        }

    # ----- reading Airflow's tables -----

    def _connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        return psycopg.connect(host=str(self.pg.socket_dir), port=self.pg.port, user=self.pg.user, dbname=DATABASE,
                               autocommit=True, row_factory=dict_row)

    def _run_row(self, run_id: str) -> dict[str, Any] | None:
        with self._connect() as conn:
            row: dict[str, Any] | None = conn.execute(
                "SELECT state, queued_at, start_date, end_date FROM dag_run WHERE dag_id = %s AND run_id = %s",
                [DAG_ID, run_id]).fetchone()
            return row

    def _ti_states(self, run_id: str) -> dict[str, int]:
        with self._connect() as conn:
            rows = conn.execute("SELECT coalesce(state, 'none') AS state, count(*) AS n FROM task_instance "
                                "WHERE dag_id = %s AND run_id = %s GROUP BY 1", [DAG_ID, run_id]).fetchall()
        return {r["state"]: r["n"] for r in rows}

    def _dag_stored(self) -> bool:
        try:
            with self._connect() as conn:
                return conn.execute("SELECT 1 FROM serialized_dag WHERE dag_id = %s", [DAG_ID]).fetchone() is not None
        except Exception:  # noqa: BLE001 - the table may not be there yet
            return False

    def _api_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def _check_alive(self) -> None:
        for name, process in self.group.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; last output:\n{self.group.output(name)[-3000:]}")

    def _wait(self, what: str, ready: Any) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SEC
        while not ready():
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {START_TIMEOUT_SEC:.0f} s for {what}; logs in {self.log_dir}")
            time.sleep(0.5)


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[-1] if lines else "(no output)"


def _json_or_empty(text: str) -> list[dict[str, Any]]:
    """The JSON list the CLI printed; its log lines (``[warning ] ...``) share stdout."""
    for line in reversed(text.splitlines()):
        if line.startswith("[{") or line.strip() == "[]":
            try:
                data = json.loads(line)
            except ValueError:
                continue
            return data if isinstance(data, list) else []
    return []
