"""Mapping over a literal dict gives (key, value) pairs in insertion order."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_dict_literal", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_dict_literal():
    @task
    def show(item):
        key, value = item
        return f"{key}={value}"

    show.expand(item={"a": 1, "b": 2, "c": 3})


p_dict_literal()
