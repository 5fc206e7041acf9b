"""Reading DAG files into the database: serialized versions, DagModel rows and import errors.

User code is imported in a child process (``python -m dagsapp.loader``) with a timeout, so a
DAG file that hangs, crashes or exits never takes the scheduler down with it.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dagsapp.loader import list_dag_files
from dagsapp.schedules import latest_complete_interval_start
from dagsapp.serialization import DagData, FolderData, dag_hash
from runs.models import DagImportError, DagModel, SerializedDag

log = logging.getLogger(__name__)
PARSE_TIMEOUT_SEC = 120


def folder_fingerprint(folder: str | os.PathLike[str]) -> tuple[tuple[str, float, int], ...]:
    out = []
    for p in list_dag_files(folder):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out.append((str(p), st.st_mtime, st.st_size))
    return tuple(out)


def parse_dags_folder(folder: str | os.PathLike[str]) -> FolderData:
    proc = subprocess.run(
        [sys.executable, "-m", "dagsapp.loader", str(folder)], capture_output=True, text=True,
        timeout=PARSE_TIMEOUT_SEC, cwd=str(settings.BASE_DIR),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"DAG folder parser exited with {proc.returncode}: {proc.stderr[-2000:]}")
    parsed: FolderData = json.loads(proc.stdout)
    return parsed


def first_logical_date(data: DagData, now: datetime) -> datetime | None:
    schedule = data["schedule"]
    if schedule is None or not data["start_date"]:
        return None
    start = datetime.fromisoformat(data["start_date"])
    if schedule == "@once" or data["catchup"] or start >= now:
        return start
    return latest_complete_interval_start(schedule, start, now)


def sync_dags(result: FolderData, *, folder: str | os.PathLike[str]) -> int:
    """Store what a parse found; returns how many DAGs got a new version."""
    now = timezone.now()
    changed = 0
    with transaction.atomic():
        for dag_id, data in result["dags"].items():
            digest = dag_hash(data)
            version, created = SerializedDag.objects.get_or_create(dag_id=dag_id, dag_hash=digest, defaults={"data": data})
            dm, _ = DagModel.objects.get_or_create(dag_id=dag_id)
            if dm.latest_serialized_id != version.pk:
                changed += 1
            if dm.schedule != data["schedule"] or (dm.next_dagrun is None and data["schedule"] and dm.latest_serialized_id is None):
                dm.next_dagrun = first_logical_date(data, now)
            dm.fileloc = data["fileloc"] or ""
            dm.schedule = data["schedule"]
            dm.max_active_runs = data["max_active_runs"]
            dm.latest_serialized = version
            dm.is_active = True
            dm.last_parsed = now
            dm.save()
        # DAGs whose file is gone or no longer defines them go inactive; files that failed keep
        # their DAGs' last good version so running runs carry on.
        errored = set(result["import_errors"])
        seen = set(result["dags"])
        folder_prefix = str(Path(folder).resolve())
        for dm in DagModel.objects.filter(is_active=True).exclude(dag_id__in=seen):
            if dm.fileloc in errored or not dm.fileloc.startswith(folder_prefix):
                continue
            dm.is_active = False
            dm.save(update_fields=["is_active"])
        for filename, trace in result["import_errors"].items():
            DagImportError.objects.update_or_create(filename=filename, defaults={"stacktrace": trace})
        DagImportError.objects.filter(filename__startswith=folder_prefix).exclude(filename__in=errored).delete()
    return changed


def process_dags_folder(folder: str | os.PathLike[str] | None = None) -> int:
    folder = folder or settings.DAGS_FOLDER
    return sync_dags(parse_dags_folder(folder), folder=folder)
