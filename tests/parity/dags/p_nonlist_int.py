"""An upstream returning an int to a mapped task fails."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_nonlist_int", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_nonlist_int():
    @task
    def make():
        return 5

    @task
    def show(x):
        return x

    show.expand(x=make())


p_nonlist_int()
