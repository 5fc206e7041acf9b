"""XComArg.map() transforms each item before it is passed."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_map_basic", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_map_basic():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def show(x):
        return x

    show.expand(x=numbers().map(lambda n: n * n))


p_map_basic()
