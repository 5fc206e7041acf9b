"""zip() stops at the shortest input."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_zip", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_zip():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def letters():
        return ["a", "b"]

    @task
    def show(pair):
        return list(pair)

    show.expand(pair=numbers().zip(letters()))


p_zip()
