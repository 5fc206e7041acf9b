"""A mapped group: each task inside runs per item; the reduce after the group."""

from datetime import datetime

from airflow.sdk import dag, task, task_group


@dag(dag_id="p_group_basic", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_group_basic():
    @task
    def double(x):
        return x * 2

    @task
    def describe(x, label):
        return f"{label}:{x}"

    @task_group
    def stage(x):
        return describe(double(x), label="n")

    @task
    def collect(values):
        return list(values)

    collect(stage.expand(x=[1, 2, 3]))


p_group_basic()
