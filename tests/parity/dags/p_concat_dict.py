"""concat() with a dict: like itertools.chain, Airflow takes the dict's keys."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_concat_dict", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_concat_dict():
    @task
    def first():
        return [1]

    @task
    def second():
        return {"k": "v", "j": "w"}

    @task
    def show(x):
        return x

    show.expand(x=first().concat(second()))


p_concat_dict()
