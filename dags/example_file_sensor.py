"""Wait for files with a mapped, deferrable FileSensor, then load each one.

``make_paths`` decides which files to wait for; ``write_files`` creates them a few seconds later
(the DAG makes its own files, so it runs anywhere). Each sensor index waits in the triggerer
(``deferrable=True``) and frees its worker slot; ``load`` maps over the paths the sensors found.
"""
from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime

from dagsapp.sdk import DAG, FileSensor, task

with DAG("example_file_sensor", start_date=datetime(2024, 1, 1), schedule=None, tags=["example", "deferral"]) as dag:

    @task
    def make_paths(run_id: str = "") -> list[str]:
        folder = os.path.join(tempfile.gettempdir(), "dagsapp-example-files", run_id.replace(":", "_").replace("+", "_"))
        os.makedirs(folder, exist_ok=True)
        return [os.path.join(folder, f"part-{i}.csv") for i in range(3)]

    @task
    def write_files(paths: list[str]) -> int:
        for path in paths:
            time.sleep(1)
            with open(path, "w") as f:
                f.write("id,amount\n1,10\n2,32\n")
            print(f"wrote {path}")
        return len(paths)

    @task
    def load(path: str) -> int:
        with open(path) as f:
            rows = f.read().splitlines()[1:]
        total = sum(int(r.split(",")[1]) for r in rows)
        print(f"loaded {len(rows)} rows from {path}: total {total}")
        return total

    paths = make_paths()
    write_files(paths)
    found = FileSensor.partial(task_id="wait_for_file", deferrable=True, poke_interval=0.5, timeout=120).expand(filepath=paths)
    load.expand(path=found.output)
