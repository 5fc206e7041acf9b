"""Cross product of two upstream results and a literal."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_cross_product_xcom", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_cross_product_xcom():
    @task
    def numbers():
        return [1, 2]

    @task
    def letters():
        return ["a", "b"]

    @task
    def pair(x, y, z):
        return f"{x}{y}{z}"

    pair.expand(x=numbers(), y=letters(), z=[".", "!"])


p_cross_product_xcom()
