"""The DAG processor: DAG files into the database, one file at a time, whatever a file does.

Each file is imported in a child process of its own (``python -m dagsapp.loader FILE OUT``),
killed after ``DAG_FILE_PROCESSOR_TIMEOUT`` seconds; its answer comes through a file, not
stdout. A file that hangs, crashes, exits, prints or defines values that cannot be stored
becomes an import error for that file only, and each file is synced in its own transaction, so
every other file still registers. ``manage.py dag_processor`` runs this in a loop of its own,
apart from the scheduler, which parsing never holds up (as in Airflow 3).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dagsapp.loader import list_dag_files
from dagsapp.schedules import latest_complete_interval_start
from dagsapp.serialization import DagData, FolderData, dag_hash
from runs import heartbeats, metrics
from runs.models import DagImportError, DagModel, SerializedDag

log = logging.getLogger(__name__)
PARALLELISM = 4
CHECK_INTERVAL_SEC = 2.0

Fingerprint = tuple[float, int]


def file_timeout() -> float:
    return float(getattr(settings, "DAG_FILE_PROCESSOR_TIMEOUT", 50.0))


def folder_fingerprint(folder: str | os.PathLike[str]) -> dict[str, Fingerprint]:
    """Each DAG file's (mtime, size), by resolved path."""
    out: dict[str, Fingerprint] = {}
    for p in list_dag_files(folder):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out[str(p.resolve())] = (st.st_mtime, st.st_size)
    return out


def storable_text(text: str) -> str:
    """What PostgreSQL text can hold of an error message: no NUL, no lone surrogate."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def parse_dag_file(path: str, *, timeout: float | None = None) -> FolderData:
    """One file in a child process; whatever the child does, an answer for this file."""
    timeout = file_timeout() if timeout is None else timeout
    with tempfile.TemporaryDirectory(prefix="dagparse-") as tmp:
        out = Path(tmp) / "result.json"
        with open(Path(tmp) / "stderr", "w+b") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "dagsapp.loader", path, str(out)], cwd=str(settings.BASE_DIR),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            )
            try:
                code = child.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(child)
                return _error(path, f"Timeout: the DAG file took more than {timeout:g} s to import and was stopped")
            finally:
                _kill_group(child)  # anything the file left running in the background
            err.seek(0)
            stderr = err.read()[-4000:].decode("utf-8", "replace")
        if out.exists():
            try:
                parsed: FolderData = json.loads(out.read_text(encoding="utf-8"))
                return parsed
            except ValueError as exc:
                return _error(path, f"The DAG file's parse result could not be read: {exc}")
        how = f"was killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        return _error(path, f"Importing the DAG file {how} before it finished.\n{stderr}")


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()


def _error(path: str, message: str) -> FolderData:
    return {"dags": {}, "import_errors": {path: message}, "files": {}}


def first_logical_date(data: DagData, now: datetime) -> datetime | None:
    schedule = data["schedule"]
    if schedule is None or not data["start_date"]:
        return None
    start = datetime.fromisoformat(data["start_date"])
    if schedule == "@once" or data["catchup"] or start >= now:
        return start
    return latest_complete_interval_start(schedule, start, now)


def sync_file(path: str, result: FolderData) -> int:
    """Store one file's parse in a transaction of its own; returns how many DAGs got a new version."""
    now = timezone.now()
    changed = 0
    root = str(Path(settings.DAGS_FOLDER).resolve()) + os.sep
    folder = root if path.startswith(root) else os.path.dirname(path) + os.sep
    with transaction.atomic():
        error = result["import_errors"].get(path)
        dags = result["dags"] if error is None else {}
        # A DAG id another file of the same folder still defines stays with that file. (Another
        # folder's DAG of the same id is taken over: the folder in use is the one being parsed.)
        clash = (DagModel.objects.filter(dag_id__in=list(dags), is_active=True, fileloc__startswith=folder).exclude(fileloc=path)
                 .values_list("dag_id", "fileloc").first())
        if clash is not None and Path(clash[1]).exists():
            error, dags = f"DagDuplicateError: DAG id {clash[0]!r} is already defined in {clash[1]}; ignoring {path}\n", {}
        source = result.get("sources", {}).get(path, "")
        for dag_id, data in dags.items():
            changed += _store_dag(dag_id, data, path=path, now=now, source=source)
        if error is None:
            # DAGs this file no longer defines go inactive; a file that failed keeps its DAGs' last
            # good version, so running runs carry on.
            DagModel.objects.filter(fileloc=path, is_active=True).exclude(dag_id__in=list(dags)).update(is_active=False)
            DagImportError.objects.filter(filename=path).delete()
        else:
            DagImportError.objects.update_or_create(filename=path, defaults={"stacktrace": storable_text(error)})
    return changed


def _store_dag(dag_id: str, data: DagData, *, path: str, now: datetime, source: str = "") -> int:
    digest = dag_hash(data, source)
    version, _ = SerializedDag.objects.get_or_create(dag_id=dag_id, dag_hash=digest, defaults={"data": data, "source_code": source})
    dm, _ = DagModel.objects.get_or_create(dag_id=dag_id)
    changed = int(dm.latest_serialized_id != version.pk)
    if dm.schedule != data["schedule"] or (dm.next_dagrun is None and data["schedule"] and dm.latest_serialized_id is None):
        dm.next_dagrun = first_logical_date(data, now)
    dm.fileloc = data["fileloc"] or path
    dm.schedule = data["schedule"]
    dm.max_active_runs = data["max_active_runs"]
    dm.latest_serialized = version
    dm.is_active = True
    dm.last_parsed = now
    dm.save()
    return changed


def forget_removed_files(folder: str | os.PathLike[str], present: set[str]) -> None:
    """DAGs whose file left the folder go inactive, and so do the files' import errors."""
    prefix = str(Path(folder).resolve()) + os.sep
    with transaction.atomic():
        DagModel.objects.filter(is_active=True, fileloc__startswith=prefix).exclude(fileloc__in=present).update(is_active=False)
        DagImportError.objects.filter(filename__startswith=prefix).exclude(filename__in=present).delete()


def _timed_parse(path: str) -> FolderData:
    started = time.monotonic()
    try:
        return parse_dag_file(path)
    finally:
        metrics.DAG_PROCESSING_LAST_DURATION.labels(file_name=os.path.basename(path)).set(time.monotonic() - started)


def process_files(paths: list[str]) -> int:
    """Parse files in parallel children (a file that hangs holds one slot, not the others) and
    sync each as its answer arrives; returns how many DAGs got a new version."""
    changed = 0
    with ThreadPoolExecutor(max_workers=PARALLELISM, thread_name_prefix="dag-parse") as pool:
        futures = {pool.submit(_timed_parse, path): path for path in paths}
        for future in as_completed(futures):
            path = futures[future]
            try:
                changed += sync_file(path, future.result())
            except Exception:
                log.exception("Could not store the DAGs of %s", path)
    return changed


def process_dags_folder(folder: str | os.PathLike[str] | None = None) -> int:
    """Parse and store every file of the folder once (``dags reserialize``, tests)."""
    folder = folder or settings.DAGS_FOLDER
    present = folder_fingerprint(folder)
    forget_removed_files(folder, set(present))
    return process_files(sorted(present))


class DagProcessor:
    """The loop of ``manage.py dag_processor``: re-parses files that changed, forgets removed ones."""

    def __init__(self, *, dags_folder: str | None = None) -> None:
        self.dags_folder = dags_folder or str(settings.DAGS_FOLDER)
        self.seen: dict[str, Fingerprint] = {}
        self.stop = threading.Event()

    def run_once(self) -> int:
        heartbeats.beat("dag_processor")
        current = folder_fingerprint(self.dags_folder)
        if set(current) != set(self.seen):
            forget_removed_files(self.dags_folder, set(current))
        changed_files = sorted(path for path, fp in current.items() if self.seen.get(path) != fp)
        self.seen = current
        if not changed_files:
            return 0
        started = time.monotonic()
        changed = process_files(changed_files)
        metrics.DAG_PROCESSING_TOTAL_PARSE_TIME.set(time.monotonic() - started)
        log.info("Parsed %d DAG file(s) in %.2f s; %d DAG(s) changed", len(changed_files), time.monotonic() - started, changed)
        return changed

    def run_forever(self) -> None:
        def on_signal(signum: int, frame: object) -> None:
            log.info("Received signal %d: exiting after the current files", signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not self.stop.is_set():
            try:
                self.run_once()
            except Exception:
                # The database may be restarting: keep the files to parse again on the next check.
                log.exception("DAG processing failed; retrying")
                self.seen = {}
                from django.db import close_old_connections

                close_old_connections()
            self.stop.wait(CHECK_INTERVAL_SEC)
        log.info("DAG processor stopped")
