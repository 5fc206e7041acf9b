"""An upstream result given to partial() is passed whole to every index."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_partial_xcom", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_partial_xcom():
    @task
    def offset():
        return 100

    @task
    def add(x, y):
        return x + y

    add.partial(y=offset()).expand(x=[1, 2])


p_partial_xcom()
