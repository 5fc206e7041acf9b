"""Records Apache Airflow's results for the parity DAGs into tests/parity/fixtures/NAME.json.

Run with Airflow's own interpreter (``make parity-record`` installs it into var/parity-airflow):

    var/parity-airflow/bin/python tests/parity/record.py [NAME ...] [--jobs 2]

Each DAG runs by ``airflow dags test`` in its own AIRFLOW_HOME (a copy of one migrated SQLite
database) with a DAG folder holding only its file, so runs cannot see each other. The results are
read back from Airflow's metadata database, not from the log: ``task_instance`` for states, tries
and names, ``xcom`` for return values. A fixture's hand-written keys (``intended``, ``notes``) are
kept when it is recorded again.

This file is not a test and imports Airflow only inside functions, so our pytest never needs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DAGS = HERE / "dags"
FIXTURES = HERE / "fixtures"
ROOT = HERE.parent.parent
HOME = ROOT / "var" / "parity-airflow-home"
RUN_TIMEOUT_SEC = 600
# Hand-written keys a new recording must not lose.
KEPT_KEYS = ("intended", "notes")


def airflow_env(home: Path, dags_folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }


def airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


def migrated_template() -> Path:
    """One migrated database, copied for each DAG (a migration takes seconds, a copy nothing)."""
    template = HOME / "template" / "airflow.db"
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([airflow_bin(), "db", "migrate"], env=airflow_env(template.parent, template.parent),
                       check=True, capture_output=True)
    return template


def import_error(path: Path, home: Path) -> str | None:
    """The last line of Airflow's import error for this file, or None if it parses."""
    code = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag(dag_folder=sys.argv[1])\n"
        "print(json.dumps({k: str(v) for k, v in bag.import_errors.items()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=airflow_env(home, path.parent),
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"parsing {path} failed:\n{out.stderr}")
    errors = json.loads(out.stdout.strip().splitlines()[-1])
    if not errors:
        return None
    return next(iter(errors.values())).strip().splitlines()[-1]


def decode(value: Any) -> Any:
    """An XCom value as stored in SQLite (JSON text, or a number SQLite kept as one) -> plain JSON."""
    if isinstance(value, bytes | str):
        value = json.loads(value)
    # Tuples and other sequences compare as JSON lists.
    return json.loads(json.dumps(_deserialize(value), default=list))


def _deserialize(value: Any) -> Any:
    """Airflow's serde, part by part: a part it cannot read back (its own NOTSET sentinel, say)
    becomes the string "<unreadable CLASSNAME>" instead of losing the whole value."""
    from airflow.sdk.serde import deserialize

    if isinstance(value, list):
        return [_deserialize(v) for v in value]
    if isinstance(value, dict):
        try:
            return deserialize(value)
        except (TypeError, ImportError, ValueError):
            if "__classname__" in value:
                return f"<unreadable {value['__classname__']}>"
            return {k: _deserialize(v) for k, v in value.items()}
    return value


def read_results(db: Path, dag_id: str) -> dict[str, Any]:
    con = sqlite3.connect(db)
    run = con.execute("SELECT id, run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()
    if run is None:
        return {"state": None, "task_instances": []}
    run_pk, run_id, state = run
    values = {(t, m): decode(v) for t, m, v in con.execute(
        "SELECT task_id, map_index, value FROM xcom WHERE dag_run_id = ? AND key = 'return_value'", (run_pk,))}
    rows = con.execute("SELECT task_id, map_index, state, try_number, rendered_map_index FROM task_instance "
                       "WHERE dag_id = ? AND run_id = ? ORDER BY task_id, map_index", (dag_id, run_id)).fetchall()
    con.close()
    return {"state": state, "task_instances": [[t, m, s, n, r, values.get((t, m))] for t, m, s, n, r in rows]}


def record(name: str, template: Path) -> str:
    source = DAGS / f"{name}.py"
    fixture_path = FIXTURES / f"{name}.json"
    old = json.loads(fixture_path.read_text()) if fixture_path.exists() else {}
    with tempfile.TemporaryDirectory(prefix=f"parity-{name}-", dir=HOME) as tmp:
        home, folder = Path(tmp), Path(tmp) / "dags"
        folder.mkdir()
        shutil.copy(source, folder / source.name)
        shutil.copy(template, home / "airflow.db")
        fixture: dict[str, Any] = {"dag_id": name, "airflow_version": airflow_version()}
        error = import_error(folder / source.name, home)
        if error is not None:
            fixture.update(import_error=error, state=None, task_instances=[])
        else:
            proc = subprocess.run([airflow_bin(), "dags", "test", name], env=airflow_env(home, folder),
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT_SEC)
            (HOME / "logs").mkdir(exist_ok=True)
            (HOME / "logs" / f"{name}.log").write_text(proc.stdout + proc.stderr)
            fixture.update(import_error=None, **read_results(home / "airflow.db", name))
    fixture.update({k: old[k] for k in KEPT_KEYS if k in old})
    fixture_path.write_text(dumps(fixture))
    return f"{name}: {fixture['state'] or 'import error'} ({len(fixture['task_instances'])} instances)"


def dumps(fixture: dict[str, Any]) -> str:
    """Indented JSON with one line per task instance, so a diff shows which instance changed."""
    def rows(items: list[Any]) -> str:
        return "[\n" + ",\n".join("    " + json.dumps(i) for i in items) + "\n  ]" if items else "[]"

    parts = []
    for key, value in fixture.items():
        if key == "task_instances":
            text = rows(value)
        elif key == "intended":
            text = json.dumps(value, indent=2).replace("\n", "\n  ")
            if "task_instances" in value:
                inner = rows(value["task_instances"]).replace("\n", "\n  ")
                text = json.dumps({k: v for k, v in value.items() if k != "task_instances"}, indent=4)[:-2]
                text += ',\n    "task_instances": ' + inner + "\n  }"
        else:
            text = json.dumps(value)
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def airflow_version() -> str:
    import airflow

    return str(airflow.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="DAG file names without .py (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    names = args.names or sorted(p.stem for p in DAGS.glob("*.py"))
    HOME.mkdir(parents=True, exist_ok=True)
    FIXTURES.mkdir(exist_ok=True)
    template = migrated_template()
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda n: record(n, template), names):
            print(line, flush=True)


if __name__ == "__main__":
    main()
