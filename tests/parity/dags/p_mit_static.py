"""A constant map_index_template names every index the same."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mit_static", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_static():
    @task(map_index_template="always the same")
    def work(x):
        return x

    work.expand(x=[1, 2])


p_mit_static()
