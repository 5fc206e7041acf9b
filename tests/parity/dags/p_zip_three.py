"""zip() of three upstream results."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_zip_three", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_zip_three():
    @task
    def a():
        return [1, 2]

    @task
    def b():
        return ["x", "y"]

    @task
    def c():
        return [True, False]

    @task
    def show(triple):
        return list(triple)

    show.expand(triple=a().zip(b(), c()))


p_zip_three()
