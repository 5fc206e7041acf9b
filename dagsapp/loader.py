"""Finding DAGs in DAG files. A file that fails becomes an import error; it never hides other files.

``python -m dagsapp.loader FILE OUT`` writes the file's DAGs serialized, or its import error, as
JSON to OUT: the DAG processor parses each file in a child process it can kill and survive.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagsapp.dag import DAG, DagContext
from dagsapp.taskgroup import TaskGroupContext

if TYPE_CHECKING:
    from dagsapp.serialization import FolderData

IMPORT_TIMEOUT_SEC = 30


@dataclass
class DagBag:
    dags: dict[str, DAG] = field(default_factory=dict)
    import_errors: dict[str, str] = field(default_factory=dict)
    file_dag_ids: dict[str, list[str]] = field(default_factory=dict)


def list_dag_files(folder: str | os.PathLike[str]) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.rglob("*.py")
        if not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )


@contextmanager
def _timeout(seconds: int, path: Path) -> Iterator[None]:
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise TimeoutError(f"DAG file {path} took more than {seconds} s to import")

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def load_dag_file(path: str | os.PathLike[str]) -> list[DAG]:
    """Import one DAG file and return the DAGs it defines, finalized (raises on any error)."""
    path = Path(path).resolve()
    module_name = "dagsapp_dagfile_" + hashlib.sha1(str(path).encode()).hexdigest()[:16]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    collected: list[DAG] = []
    saved_dags, saved_groups = list(DagContext._stack), list(TaskGroupContext._stack)
    DagContext.collected = collected
    try:
        with _timeout(IMPORT_TIMEOUT_SEC, path):
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
    finally:
        DagContext.collected = None
        DagContext._stack[:] = saved_dags
        TaskGroupContext._stack[:] = saved_groups
    for value in vars(module).values():
        if isinstance(value, DAG) and value not in collected:
            collected.append(value)
    seen: dict[str, DAG] = {}
    for dag in collected:
        if dag.dag_id in seen and seen[dag.dag_id] is not dag:
            raise ValueError(f"DAG id {dag.dag_id!r} is defined twice in {path.name}")
        seen[dag.dag_id] = dag
        dag.fileloc = str(path)
        dag.finalize()
    return list(seen.values())


def load_dags_folder(folder: str | os.PathLike[str]) -> DagBag:
    bag = DagBag()
    for path in list_dag_files(folder):
        key = str(path.resolve())
        try:
            dags = load_dag_file(path)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            bag.import_errors[key] = "".join(traceback.format_exception(exc))
            continue
        clash = [d.dag_id for d in dags if d.dag_id in bag.dags]
        if clash:
            other = bag.dags[clash[0]].fileloc
            bag.import_errors[key] = f"DagDuplicateError: DAG id {clash[0]!r} is already defined in {other}; ignoring {key}\n"
            continue
        bag.file_dag_ids[key] = [d.dag_id for d in dags]
        for d in dags:
            bag.dags[d.dag_id] = d
    return bag


def serialize_folder(folder: str | os.PathLike[str]) -> FolderData:
    return serialize_files(list_dag_files(folder))


def serialize_files(paths: list[Path]) -> FolderData:
    """Each file's DAGs serialized, or its import error: a value that cannot be stored (NaN, a
    NUL character, a lone surrogate) is an import error naming the field, at parse time."""
    from dagsapp.jsonvalues import json_problem_at
    from dagsapp.serialization import serialize_dag

    out: FolderData = {"dags": {}, "import_errors": {}, "files": {}, "sources": {}}
    for path in paths:
        key = str(path.resolve())
        try:
            # Read before the import, the text that is imported (a later edit is the next parse's).
            source = path.read_text(encoding="utf-8", errors="replace").replace("\x00", "\\x00")
            dags = load_dag_file(path)
            serialized = {d.dag_id: serialize_dag(d) for d in dags}
            for dag_id, data in serialized.items():
                found = json_problem_at(data)
                if found:
                    raise ValueError(f"DAG {dag_id!r} cannot be stored: {found[0] or 'it'} {found[1]}")
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            out["import_errors"][key] = "".join(traceback.format_exception(exc))
            continue
        out["dags"].update(serialized)
        out["files"][key] = list(serialized)
        out["sources"][key] = source
    return out


if __name__ == "__main__":
    # python -m dagsapp.loader FILE OUT: the answer goes to the file OUT, never to stdout, which the
    # DAG file may write to (print, os.write(1, ...)). Run by the DAG processor, one file per child.
    with open(os.devnull, "w") as devnull:
        sys.stdout = devnull
        result = serialize_files([Path(sys.argv[1])])
    with open(sys.argv[2] + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f, default=str, allow_nan=False)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
