"""Live DAG objects for workers: each DAG file imported once per process, again when it changes."""
from __future__ import annotations

import os
import threading

from dagsapp.dag import DAG
from dagsapp.loader import load_dag_file

_cache: dict[str, tuple[float, dict[str, DAG]]] = {}
_lock = threading.Lock()


def get_dag(dag_id: str, fileloc: str | None) -> DAG:
    if not fileloc:
        raise LookupError(f"DAG {dag_id!r} has no file to import it from")
    mtime = os.stat(fileloc).st_mtime
    with _lock:
        cached = _cache.get(fileloc)
        if cached is None or cached[0] != mtime:
            dags = {d.dag_id: d for d in load_dag_file(fileloc)}
            _cache[fileloc] = (mtime, dags)
            cached = _cache[fileloc]
    try:
        return cached[1][dag_id]
    except KeyError:
        raise LookupError(f"DAG {dag_id!r} is no longer defined in {fileloc}") from None
