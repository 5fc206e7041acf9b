""".map() over an upstream dict."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_map_dict", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_map_dict():
    @task
    def mapping():
        return {"k": 1, "j": 2}

    @task
    def show(x):
        return x

    show.expand(x=mapping().map(lambda item: list(item)))


p_map_dict()
