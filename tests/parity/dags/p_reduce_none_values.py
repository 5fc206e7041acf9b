"""Indexes returning None and what the reduce receives for them."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_reduce_none_values", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_reduce_none_values():
    @task
    def maybe(x):
        return None if x % 2 else x

    @task
    def collect(values):
        return list(values)

    collect(maybe.expand(x=[0, 1, 2, 3]))


p_reduce_none_values()
