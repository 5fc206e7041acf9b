"""Mapping over an upstream dict keeps the dict's order, not sorted keys."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_dict_xcom", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_dict_xcom():
    @task
    def settings():
        return {"zeta": 1, "alpha": 2}

    @task
    def show(item):
        return list(item)

    show.expand(item=settings())


p_dict_xcom()
