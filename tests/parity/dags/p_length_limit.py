"""An upstream returning more items than max_map_length (1024) fails."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_length_limit", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_length_limit():
    @task
    def many():
        return list(range(1025))

    @task
    def show(x):
        return x

    show.expand(x=many())


p_length_limit()
