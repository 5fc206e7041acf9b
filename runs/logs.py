"""Per-try task logs, stored as chunks in PostgreSQL and flushed while the task runs (live tail)."""
from __future__ import annotations

import io
import logging
import threading
import time

from django.db import connections

from runs.models import TaskInstanceLog

FLUSH_INTERVAL_SEC = 0.5
MAX_CHUNK_CHARS = 64_000


class TaskLogWriter(io.TextIOBase):
    """A file-like sink for one try's output. A background thread flushes it every half second,
    so the web page can tail a running instance; ``close()`` writes whatever is left."""

    def __init__(self, ti_id: int, try_number: int) -> None:
        self.ti_id = ti_id
        self.try_number = try_number
        last = TaskInstanceLog.objects.filter(task_instance_id=ti_id, try_number=try_number).order_by("-seq").values_list("seq", flat=True).first()
        self._seq = last + 1 if last is not None else 0
        self._buf: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"log-flush-{ti_id}", daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        with self._lock:
            self._buf.append(s)
        return len(s)

    def _take(self) -> str:
        with self._lock:
            text = "".join(self._buf)
            self._buf.clear()
        return text

    def _store(self, text: str) -> None:
        for start in range(0, len(text), MAX_CHUNK_CHARS):
            TaskInstanceLog.objects.create(task_instance_id=self.ti_id, try_number=self.try_number, seq=self._seq,
                                           text=text[start : start + MAX_CHUNK_CHARS].replace("\x00", "\\x00"))
            self._seq += 1

    def _run(self) -> None:
        try:
            while not self._stop.wait(FLUSH_INTERVAL_SEC):
                text = self._take()
                if text:
                    self._store(text)
        finally:
            # The thread got its own connection; close it so workers do not leak connections.
            connections.close_all()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=10)
        text = self._take()
        if text:
            self._store(text)
        super().close()


class WriterHandler(logging.Handler):
    def __init__(self, writer: TaskLogWriter) -> None:
        super().__init__(logging.INFO)
        self.writer = writer
        self.setFormatter(logging.Formatter("[%(asctime)s] {%(name)s} %(levelname)s - %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover - never let logging break a task
            self.handleError(record)


def read_log(ti_id: int, try_number: int, *, after_seq: int = -1) -> tuple[str, int]:
    """The try's log text after chunk ``after_seq``, and the last chunk number read (for tailing)."""
    rows = list(TaskInstanceLog.objects.filter(task_instance_id=ti_id, try_number=try_number, seq__gt=after_seq)
                .order_by("seq").values_list("seq", "text"))
    if not rows:
        return "", after_seq
    return "".join(t for _, t in rows), rows[-1][0]


def log_line(ti_id: int, try_number: int, message: str) -> None:
    """Append one line written by the system (scheduler or worker), not by the task."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    w_last = TaskInstanceLog.objects.filter(task_instance_id=ti_id, try_number=try_number).order_by("-seq").values_list("seq", flat=True).first()
    TaskInstanceLog.objects.create(task_instance_id=ti_id, try_number=try_number, seq=(w_last + 1) if w_last is not None else 0,
                                   text=f"[{stamp}] {message}\n")
