"""DAG sources that several test modules write into a temporary DAG folder.

Most are bodies for ``tests.runs.factories.write_dag`` / ``make_run``, which put the imports
of ``factories.HEADER`` in front; the fault tests' are whole files. A source that one test
module uses stays next to that test.
"""

from __future__ import annotations

# One mapped task over a literal list: expanded without waiting for anything.
LITERAL = """
@task
def add(x):
    return x + 1

with DAG("literal") as the_dag:
    add.expand(x=[1, 2, 3])
"""

# Two plain tasks in a chain; `a` has retries.
CHAIN = """
with DAG("chain") as the_dag:
    EmptyOperator(task_id="a", retries=2) >> EmptyOperator(task_id="b")
"""


def over_variable(key: str) -> str:
    """``show`` mapped over the Variable ``key``, in DAG ``variables``."""
    return f"""
@task
def show(v):
    return v

with DAG("variables") as the_dag:
    show.expand(v=VariableRef("{key}"))
"""


def daily(*, catchup: bool, max_active_runs: int | None = None) -> str:
    """DAG ``daily``: one EmptyOperator ``a``, scheduled @daily from 2024-01-01."""
    options = f", max_active_runs={max_active_runs}" if max_active_runs is not None else ""
    return f"""
with DAG("daily", schedule="@daily", start_date=datetime(2024, 1, 1), catchup={catchup}{options}) as the_dag:
    EmptyOperator(task_id="a")
"""


# ----- whole DAG files for the fault tests' private DAG folder -----

# n instances of `work`, each sleeping `seconds` and returning its index and try number, so the
# XCom shows which try's result was kept. retries=1 with no delay: a try lost with its worker
# is run again at once.
SLEEPY = '''\
from __future__ import annotations

import time
from datetime import datetime, timedelta

from dagsapp.sdk import dag, get_current_context, task


@dag(dag_id="faults_sleepy", start_date=datetime(2024, 1, 1), schedule=None)
def faults_sleepy():
    @task
    def plan() -> list[dict]:
        conf = get_current_context()["conf"]
        return [{"i": i, "seconds": float(conf.get("seconds", 2))} for i in range(int(conf.get("n", 20)))]

    @task
    def work(i: int, seconds: float) -> dict:
        ti = get_current_context()["ti"]
        print(f"index {i} try {ti.try_number}: sleeping {seconds} s", flush=True)
        time.sleep(seconds)
        print(f"index {i} try {ti.try_number}: done", flush=True)
        return {"i": i, "try": ti.try_number}

    @task
    def total(results: list[dict]) -> int:
        return len(results)

    total(work.partial(retries=RETRIES, retry_delay=timedelta(seconds=0)).expand_kwargs(plan()))


faults_sleepy()
'''


def faults_sleepy(*, retries: int = 1) -> str:
    return SLEEPY.replace("RETRIES", str(retries))


# Several mapped DAGs of different shapes for the two-scheduler load test.
LOAD = '''\
from __future__ import annotations

import time
from datetime import datetime

from dagsapp.sdk import dag, task


@dag(dag_id="faults_load_DAGNO", start_date=datetime(2024, 1, 1), schedule=None)
def faults_load():
    @task
    def numbers() -> list[int]:
        return list(range(WIDTH))

    @task
    def letters() -> list[str]:
        return ["a", "b", "c"]

    @task
    def square(n: int) -> int:
        time.sleep(0.05)
        return n * n

    @task
    def pair(n: int, s: str) -> str:
        return f"{s}{n}"

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    nums = numbers()
    total(square.expand(n=nums))
    pair.expand(n=nums, s=letters())


faults_load()
'''


def faults_load(dag_no: int, *, width: int) -> str:
    return LOAD.replace("DAGNO", str(dag_no)).replace("WIDTH", str(width))


# A DAG that must register beside hostile files (written after factories.HEADER's imports).
CANARY = """
with DAG("canary") as the_dag:
    EmptyOperator(task_id="sing")
"""

# Each line: what a careless or hostile DAG file does, and what its import error must say.
HOSTILE_FILES = {
    "exits": ("import os\nos._exit(0)\n", "exited with code 0"),
    "segfaults": ("import ctypes\nctypes.string_at(0)\n", "killed by signal SIGSEGV"),
    "writes_to_fd_1": ('import os\nos.write(1, b"{not json")\n' + CANARY.replace("canary", "noisy"), None),
    "nan_param": ('with DAG("nan_param", params={"t": float("nan")}) as the_dag:\n    EmptyOperator(task_id="a")\n', "params.t contains NaN"),
    "nul_doc": ('with DAG("nul_doc", doc_md="a\\x00b") as the_dag:\n    EmptyOperator(task_id="a")\n', "doc_md contains a NUL character"),
    "nul_error": ('raise ValueError("\\x00")\n', "ValueError"),
    "surrogate_tag": ('with DAG("surrogate_tag", tags=["\\ud800"]) as the_dag:\n    EmptyOperator(task_id="a")\n', "lone surrogate"),
    "hangs": ("while True:\n    pass\n", "took more than 3 s to import"),
    "swallows_the_timeout": ("while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n",
                             "took more than 3 s to import"),
}
