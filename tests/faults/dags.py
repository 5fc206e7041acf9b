"""DAG files the fault tests write into their private DAG folder."""

from __future__ import annotations

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


def sleepy(*, retries: int = 1) -> str:
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


def load(dag_no: int, *, width: int) -> str:
    return LOAD.replace("DAGNO", str(dag_no)).replace("WIDTH", str(width))
