"""Per-try task logs, stored as chunks in PostgreSQL and flushed while the task runs (live tail)."""
from __future__ import annotations

import io
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from django.db import connection

from runs.models import TaskInstanceLog

FLUSH_INTERVAL_SEC = 0.5
MAX_CHUNK_CHARS = 64_000


def _store(ti_id: int, try_number: int, text: str) -> None:
    text = text.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL
    chunks = [text[i : i + MAX_CHUNK_CHARS] for i in range(0, len(text), MAX_CHUNK_CHARS)]
    # Plain SQL: this runs for every instance, and the ORM's bulk_create costs more than the insert.
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO runs_taskinstancelog (task_instance_id, try_number, text, created_at)"
            " SELECT %s, %s, chunk, now() FROM unnest(%s::text[]) WITH ORDINALITY AS c(chunk, n) ORDER BY n",
            [ti_id, try_number, chunks],
        )


class _Flusher:
    """One thread per process flushes every open writer, so a running task's log can be tailed,
    and heartbeats the tries they belong to.

    A single long-lived thread (with its own long-lived DB connection) instead of one per
    instance: starting a thread and a connection per task instance cost more than the task.
    """

    def __init__(self) -> None:
        self.writers: weakref.WeakSet[TaskLogWriter] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def register(self, writer: TaskLogWriter) -> None:
        import os

        with self._lock:
            self.writers.add(writer)
            # After a fork (Celery prefork), the parent's thread does not exist in the child.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="task-log-flusher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        from django.db import connections

        while True:
            time.sleep(FLUSH_INTERVAL_SEC)
            writers = list(self.writers)
            if not writers:
                # Idle: give the connection back (it would otherwise pin the database forever).
                connections.close_all()
                continue
            for writer in writers:
                try:
                    writer.flush_pending()
                    writer.flush_update()
                    writer.heartbeat_if_due()
                except Exception:
                    logging.getLogger(__name__).debug("log flush or heartbeat failed", exc_info=True)
                    # After a database restart this thread's connection is dead for good: drop it so
                    # the next turn reconnects, or the tries here stop heartbeating and are taken for dead.
                    connections.close_all()


_flusher = _Flusher()


class TaskLogWriter(io.TextIOBase):
    """A file-like sink for one try's output; ``close()`` writes whatever is left."""

    def __init__(self, ti_id: int, try_number: int, *, on_lost: Callable[[], None] | None = None) -> None:
        self.ti_id = ti_id
        self.try_number = try_number
        # Called (from the flusher thread) when a heartbeat finds the try no longer running:
        # it was cleared, marked, or declared dead, and must stop so two copies never run.
        self.on_lost = on_lost
        self._last_beat = time.monotonic()
        self._buf: list[str] = []
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._closed = False
        self._secrets: list[str] = []
        self._pending_update: dict[str, Any] | None = None
        _flusher.register(self)

    def defer_update(self, fields: dict[str, Any]) -> None:
        """Columns of the running instance (rendered fields, name) to store off the task's path:
        the flusher writes them within half a second, or the final state write takes them along."""
        with self._lock:
            self._pending_update = {**(self._pending_update or {}), **fields}

    def take_pending_update(self) -> dict[str, Any]:
        with self._lock:
            pending, self._pending_update = self._pending_update, None
        return pending or {}

    def redact(self, secrets: set[str]) -> None:
        """Replace these values by *** in everything stored from now on (secret task arguments)."""
        with self._lock:
            # Longest first, so a secret that contains another is hidden whole.
            self._secrets = sorted(set(self._secrets) | secrets, key=len, reverse=True)

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
            for secret in self._secrets:
                text = text.replace(secret, "***")
        return text

    def take_for_commit(self) -> str | None:
        """What is not stored yet, to be inserted by the caller's own statement (in order: the
        flusher cannot be storing an earlier chunk meanwhile, it holds the same lock)."""
        with self._io_lock:
            text = self._take()
            if len(text) > MAX_CHUNK_CHARS:
                # Too long for one chunk: stored the ordinary way, before the commit.
                _store(self.ti_id, self.try_number, text)
                return None
        return text.replace("\x00", "\\x00") if text else None

    def restore(self, text: str) -> None:
        with self._lock:
            self._buf.insert(0, text)

    def flush_update(self) -> None:
        from runs.models import TaskInstance

        pending = self.take_pending_update()
        if pending:
            try:
                TaskInstance.objects.filter(pk=self.ti_id, state="running", try_number=self.try_number).update(**pending)
            except BaseException:
                self.defer_update(pending)
                raise

    def flush_pending(self) -> None:
        # The io lock keeps chunks in order between the flusher thread and close().
        with self._io_lock:
            text = self._take()
            if text:
                try:
                    _store(self.ti_id, self.try_number, text)
                except BaseException:
                    # Kept for the next flush (the database may be restarting): never lose a line.
                    with self._lock:
                        self._buf.insert(0, text)
                    raise

    def heartbeat_if_due(self) -> None:
        from django.conf import settings
        from django.utils import timezone

        from runs.models import TaskInstance

        if self.on_lost is None or time.monotonic() - self._last_beat < settings.TASK_HEARTBEAT_SEC:
            return
        self._last_beat = time.monotonic()
        alive = TaskInstance.objects.filter(pk=self.ti_id, state="running", try_number=self.try_number).update(
            heartbeat_at=timezone.now())
        if not alive and not self._closed:
            callback, self.on_lost = self.on_lost, None
            callback()

    def close(self) -> None:
        # Called again by with_db_retry when the last flush failed: it flushes what is left.
        if not self._closed:
            self._closed = True
            _flusher.writers.discard(self)
        self.flush_pending()
        super().close()


_stamp: tuple[int, str] = (-1, "")


def _second_stamp(second: int) -> str:
    """A second in UTC, as log lines show it; formatted once per second, not per line."""
    global _stamp
    if _stamp[0] != second:
        _stamp = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second)))
    return _stamp[1]


class TryLogger:
    """The system's own lines in a try's log ("Starting attempt 1 of 2", "Marking task as ...").

    Written straight into the try's log, in the same format as the task's own logging: not
    through Python logging, which would format each line twice and also print it on the
    worker's console for every instance.
    """

    def __init__(self, writer: TaskLogWriter) -> None:
        self.writer = writer

    def _line(self, level: str, msg: str, *args: Any) -> None:
        now = time.time()
        # UTC, like every stamp in a try's log: the viewer shows it in the reader's time zone.
        stamp = _second_stamp(int(now)) + f",{int(now % 1 * 1000):03d}"
        self.writer.write(f"[{stamp}] {{dagsapp.task}} {level} - {msg % args if args else msg}\n")

    def info(self, msg: str, *args: Any) -> None:
        self._line("INFO", msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self._line("WARNING", msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self._line("ERROR", msg, *args)


def utc_formatter() -> logging.Formatter:
    """The format of a try's log lines, stamped in UTC whatever the worker's zone (the viewer converts)."""
    formatter = logging.Formatter("[%(asctime)s] {%(name)s} %(levelname)s - %(message)s")
    formatter.converter = time.gmtime
    return formatter


class WriterHandler(logging.Handler):
    def __init__(self, writer: TaskLogWriter) -> None:
        super().__init__(logging.INFO)
        self.writer = writer
        self.setFormatter(utc_formatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - never let logging break a task
            self.handleError(record)


def read_log(ti_id: int, try_number: int, *, after_seq: int = -1) -> tuple[str, int]:
    """The try's log text after chunk ``after_seq``, and the last chunk read (pass it back to tail)."""
    rows = list(TaskInstanceLog.objects.filter(task_instance_id=ti_id, try_number=try_number, id__gt=after_seq)
                .order_by("id").values_list("id", "text"))
    if not rows:
        return "", after_seq
    return "".join(t for _, t in rows), rows[-1][0]


def log_line(ti_id: int, try_number: int, message: str) -> None:
    """Append one line written by the system (scheduler or worker), not by the task."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    _store(ti_id, try_number, f"[{stamp}] {message}\n")
