"""An upstream returning a str to a mapped task fails (a str is not mapped by character)."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_nonlist_str", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_nonlist_str():
    @task
    def make():
        return "abc"

    @task
    def show(x):
        return x

    show.expand(x=make())


p_nonlist_str()
