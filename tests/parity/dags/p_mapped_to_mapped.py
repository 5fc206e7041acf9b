"""A mapped task's results feed another mapped task index by index."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mapped_to_mapped", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mapped_to_mapped():
    @task
    def double(x):
        return x * 2

    @task
    def plus_one(x):
        return x + 1

    @task
    def total(values):
        return list(values)

    total(plus_one.expand(x=double.expand(x=[1, 2, 3])))


p_mapped_to_mapped()
