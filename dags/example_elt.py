"""Extract, load, transform with one load task per file, found at run time.

``extract`` writes a few sample CSV files into a dated folder
(``<tmp>/dagsapp_elt/<ds>/<run>/``) and returns their paths; ``load`` is mapped over them and
copies each file into the PostgreSQL table ``elt_sales_raw`` (through Django's connection, as a
worker runs inside Django); ``transform`` aggregates the run's rows in SQL; ``cleanup`` removes
the folder whatever happened upstream (trigger rule ``all_done``).

Rows are keyed by run and file, and ``load`` deletes its file's rows before inserting them,
so a retried or cleared instance does not load the same rows twice.
"""
from __future__ import annotations

import csv
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from dagsapp.sdk import dag, task

TABLE = "elt_sales_raw"
SAMPLE: dict[str, list[tuple[str, int]]] = {
    "store_north.csv": [("north", 120), ("north", 80)],
    "store_south.csv": [("south", 200), ("south", 50), ("south", 25)],
    "store_web.csv": [("web", 300), ("north", 10)],
}


def run_folder(ds: str, run_id: str) -> Path:
    # One folder per run, not per day: two runs of the same day must not delete each other's files.
    safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return Path(tempfile.gettempdir()) / "dagsapp_elt" / ds / safe_run


@dag(dag_id="example_elt", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_elt() -> None:
    @task
    def create_table() -> None:
        # Once per run, before the loads, and under a lock: two concurrent CREATE TABLE IF NOT
        # EXISTS can still collide in PostgreSQL (a unique violation on the catalog).
        from django.db import connection, transaction

        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [TABLE])
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                " run_id text NOT NULL, file text NOT NULL, line integer NOT NULL,"
                " region text NOT NULL, amount integer NOT NULL, PRIMARY KEY (run_id, file, line))"
            )

    @task
    def extract(ds: str, run_id: str) -> list[str]:
        folder = run_folder(ds, run_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in SAMPLE.items():
            with open(folder / name, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["region", "amount"])
                writer.writerows(rows)
        files = sorted(str(p) for p in folder.glob("*.csv"))
        print(f"{len(files)} files in {folder}")
        return files

    @task(map_index_template="{{ task.op_kwargs['path'].rsplit('/', 1)[-1] }}")
    def load(path: str, run_id: str) -> int:
        from django.db import connection, transaction

        with open(path, newline="") as f:
            rows = [(i, r["region"], int(r["amount"])) for i, r in enumerate(csv.DictReader(f))]
        name = Path(path).name
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"DELETE FROM {TABLE} WHERE run_id = %s AND file = %s", [run_id, name])
            cur.executemany(
                f"INSERT INTO {TABLE} (run_id, file, line, region, amount) VALUES (%s, %s, %s, %s, %s)",
                [(run_id, name, line, region, amount) for line, region, amount in rows],
            )
        print(f"loaded {len(rows)} rows from {name}")
        return len(rows)

    @task
    def transform(loaded: list[int], run_id: str) -> dict[str, Any]:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute(
                f"SELECT region, sum(amount)::int FROM {TABLE} WHERE run_id = %s GROUP BY region ORDER BY region",
                [run_id],
            )
            by_region = dict(cur.fetchall())
        return {"rows": sum(loaded), "by_region": by_region}

    @task(trigger_rule="all_done")
    def cleanup(ds: str, run_id: str) -> str:
        folder = run_folder(ds, run_id)
        shutil.rmtree(folder, ignore_errors=True)
        return str(folder)

    files = extract()
    create_table() >> files
    transform(load.expand(path=files)) >> cleanup()


example_elt()
