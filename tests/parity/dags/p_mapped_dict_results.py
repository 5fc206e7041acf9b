"""Mapped tasks returning dicts; the reduce reads them."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mapped_dict_results", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mapped_dict_results():
    @task
    def describe(x):
        return {"x": x, "square": x * x}

    @task
    def collect(values):
        return [v["square"] for v in values]

    collect(describe.expand(x=[2, 3]))


p_mapped_dict_results()
