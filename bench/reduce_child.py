"""Runs one task instance as a worker would and prints its peak-memory growth, as JSON.

``python -m bench.reduce_child TI_ID [--tracemalloc]``, started by benchmark 7 with the benchmark database in
DATABASE_URL. ru_maxrss is the process's high-water mark, so the growth is measured from just
before execute_task_instance (Django, the models and the executor are imported by then).
"""
from __future__ import annotations

import json
import resource
import sys
import tracemalloc


def main() -> None:
    import django

    django.setup()
    from runs.execution.execute import execute_task_instance

    trace = "--tracemalloc" in sys.argv
    if trace:
        # A separate run: tracing costs memory of its own, which would blur ru_maxrss.
        tracemalloc.start()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    state = execute_task_instance(int(sys.argv[1]))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    heap_peak = tracemalloc.get_traced_memory()[1] if trace else None
    # Linux reports kilobytes.
    print(json.dumps({"state": state, "before_kb": before, "after_kb": after, "heap_peak_bytes": heap_peak}))


if __name__ == "__main__":
    main()
