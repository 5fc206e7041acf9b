"""An upstream returning None to a mapped task."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_nonlist_none", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_nonlist_none():
    @task
    def make():
        return None

    @task
    def show(x):
        return x

    show.expand(x=make())


p_nonlist_none()
