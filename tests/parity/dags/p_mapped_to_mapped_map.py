""".map() over a mapped task's results."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mapped_to_mapped_map", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mapped_to_mapped_map():
    @task
    def double(x):
        return x * 2

    @task
    def show(x):
        return x

    show.expand(x=double.expand(x=[1, 2, 3]).map(lambda v: f"v{v}"))


p_mapped_to_mapped_map()
