"""Run the DAG processor, the scheduler, a triggerer, a Celery worker and the web server as one foreground program (`make run`).

Like foreman: the children's output is interleaved with a name prefix, and when any child
exits, or this process gets SIGINT/SIGTERM/SIGHUP, every child is stopped with SIGTERM, then
SIGKILL after a timeout. A system missing one of its processes is not left half running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs import processes

PREFIX_WIDTH = 9


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] = field(init=False)
    reader: threading.Thread = field(init=False)


class Command(BaseCommand):
    help = "Run the DAG processor, the scheduler, a triggerer, a Celery worker and the web server until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000", help="where the web server listens")
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
        parser.add_argument("--stop-timeout", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")

    def handle(self, *args: Any, addrport: str, concurrency: int, stop_timeout: float, **options: Any) -> None:
        # Counters of the last start's processes: prometheus-client's multiprocess mode wants the
        # folder emptied before a host's processes start.
        for stale in settings.PROMETHEUS_MULTIPROC_DIR.glob("*.db"):
            stale.unlink(missing_ok=True)
        children = [
            Child("dag-proc", processes.dag_processor_argv()),
            Child("scheduler", processes.scheduler_argv()),
            Child("triggerer", processes.triggerer_argv()),
            Child("worker", processes.worker_argv(concurrency=concurrency)),
            Child("web", processes.web_argv(addrport)),
        ]
        stopping = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, request_stop)

        output_lock = threading.Lock()
        for child in children:
            # A session of its own: a terminal's Ctrl-C reaches only this process, which then
            # stops the children in order instead of all of them dying at once.
            child.process = processes.spawn(child.argv, env=os.environ, stdout=subprocess.PIPE)
            child.reader = threading.Thread(
                target=self._relay, args=(child.name, child.process.stdout, output_lock), daemon=True
            )
            child.reader.start()

        host, _, port = addrport.rpartition(":")
        self._say(output_lock, f"dashboard: http://{host or '127.0.0.1'}:{port}/  (log in as admin; Ctrl-C stops)")

        exited: Child | None = None
        while not stopping.wait(0.2):
            exited = next((child for child in children if child.process.poll() is not None), None)
            if exited is not None:
                self._say(output_lock, f"{exited.name} exited with code {exited.process.returncode}; stopping all")
                break
        else:
            self._say(output_lock, "stopping")

        self._stop(children, stop_timeout, output_lock)
        if exited is not None:
            raise CommandError(f"{exited.name} exited with code {exited.process.returncode}")

    def _stop(self, children: list[Child], timeout: float, output_lock: threading.Lock) -> None:
        names = {child.process.pid: child.name for child in children}

        def say_killing(process: processes.Process) -> None:
            self._say(output_lock, f"{names[process.pid]} ignored SIGTERM for {timeout:g}s; killing it")

        processes.stop([child.process for child in children], timeout=timeout, on_timeout=say_killing)
        for child in children:
            child.reader.join(timeout=2)

    def _relay(self, name: str, stream: IO[bytes] | None, output_lock: threading.Lock) -> None:
        assert stream is not None
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            with output_lock:
                self.stdout.write(f"{name:>{PREFIX_WIDTH}} | {line}")
                self.stdout.flush()

    def _say(self, output_lock: threading.Lock, message: str) -> None:
        with output_lock:
            self.stdout.write(self.style.WARNING(f"{'runall':>{PREFIX_WIDTH}} | {message}"))
            self.stdout.flush()
