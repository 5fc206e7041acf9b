"""zip() with a dict."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_zip_dict", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_zip_dict():
    @task
    def numbers():
        return [1, 2]

    @task
    def mapping():
        return {"k": "v", "j": "w"}

    @task
    def show(pair):
        return list(pair)

    show.expand(pair=numbers().zip(mapping()))


p_zip_dict()
