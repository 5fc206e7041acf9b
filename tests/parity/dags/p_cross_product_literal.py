"""Cross product of two literal lists: the last keyword varies fastest."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_cross_product_literal", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_cross_product_literal():
    @task
    def pair(x, y):
        return f"{x}{y}"

    @task
    def collect(values):
        return list(values)

    collect(pair.expand(x=[1, 2], y=["a", "b", "c"]))


p_cross_product_literal()
