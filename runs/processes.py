"""Starting and stopping the product's processes: the scheduler, a triggerer, a Celery worker, the web server.

One copy of what `manage.py runall`, the test suite's live stack, the fault tests and the
benchmarks all do: run a child in the project's directory, in a session of its own (so a
terminal's Ctrl-C reaches only the parent and a worker's pool processes can be stopped with
it), and stop it with SIGTERM, then SIGKILL to its whole group after a timeout.

Imports no room of runs/ and no Django: the benchmarks and the fault tests use it before, or
without, setting Django up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_SEC = 10.0

Process = subprocess.Popen[bytes]


def scheduler_argv() -> list[str]:
    return [sys.executable, "manage.py", "scheduler"]


def triggerer_argv(*, capacity: int | None = None) -> list[str]:
    return [sys.executable, "manage.py", "triggerer", *(["--capacity", str(capacity)] if capacity is not None else [])]


def dag_processor_argv() -> list[str]:
    return [sys.executable, "manage.py", "dag_processor"]


def worker_argv(
    *,
    app: str = "config",
    concurrency: int = 2,
    queue: str | None = None,
    node: str | None = None,
    loglevel: str = "INFO",
    options: Sequence[str] = (),
) -> list[str]:
    """``celery worker`` with prefork processes; ``options`` such as ``--without-gossip`` go as given."""
    argv = [sys.executable, "-m", "celery", "-A", app, "worker", "--pool", "prefork", "--concurrency", str(concurrency)]
    if queue is not None:
        argv += ["-Q", queue]
    if node is not None:
        argv += ["-n", node]
    return [*argv, *options, "--loglevel", loglevel]


def web_argv(addrport: str) -> list[str]:
    # --insecure: serve static/ with DEBUG off (a local dashboard; a deployment puts a web server in front).
    return [sys.executable, "manage.py", "runserver", addrport, "--noreload", "--insecure"]


def spawn(argv: Sequence[str], *, env: Mapping[str, str], stdout: int | IO[bytes], cwd: Path = BASE_DIR) -> Process:
    """Start ``argv`` in ``cwd`` (the project's directory unless told) in a new session, stderr
    with stdout and unbuffered."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(process: Process) -> None:
    """SIGKILL the process's whole group (a lost machine, or the end of a stop) and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def stop(
    processes: Iterable[Process],
    *,
    timeout: float = STOP_TIMEOUT_SEC,
    on_timeout: Callable[[Process], None] | None = None,
) -> None:
    """SIGTERM every process at once, then SIGKILL each one's group after ``timeout`` seconds.

    The group is killed even when the process exited in time: a worker's pool processes must
    not outlive it. Safe to call on processes that have already exited.
    """
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            if on_timeout is not None:
                on_timeout(process)
        kill(process)


class _Pinger(Protocol):
    def ping(self, *, destination: list[str], timeout: float) -> list[dict[str, object]]: ...


def worker_answers(control: _Pinger, *, node: str, process: Process, timeout: float) -> bool:
    """Whether the worker named ``node`` answers a ping within ``timeout`` seconds (False once it exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        # A reply comes through the broker's pidbox, so no result backend is involved.
        if control.ping(destination=[node], timeout=1.0):
            return True
    return False


@dataclass
class ProcessGroup:
    """Named children whose output goes to ``log_dir/<name>.log``, stopped together.

    A name started again (a restart) appends to its log, so a test reads every start of it.
    """

    log_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    stop_timeout: float = STOP_TIMEOUT_SEC
    processes: dict[str, Process] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = BASE_DIR) -> Process:
        running = self.processes.get(name)
        if running is not None and running.poll() is None:
            raise RuntimeError(f"{name} is already running")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "ab" if name in self.processes else "wb") as log:
            process = spawn(argv, env=self.env if env is None else env, stdout=log, cwd=cwd)
        self.processes[name] = process
        return process

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def output(self, name: str) -> str:
        """What process ``name`` has printed so far ("" before it started)."""
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, *names: str) -> None:
        """Stop the named processes, or all of them. Idempotent."""
        stop([self.processes[name] for name in names or self.processes], timeout=self.stop_timeout)

    def kill(self, name: str) -> None:
        kill(self.processes[name])

    def report(self, *, tail: int | None = None) -> str:
        """Each process's exit code and output (its last ``tail`` characters), for a failure message."""
        parts = []
        for name, process in self.processes.items():
            text = self.output(name)
            parts.append(f"----- {name} (exit code {process.poll()}) -----\n{text[-tail:] if tail else text}")
        return "\n".join(parts)
