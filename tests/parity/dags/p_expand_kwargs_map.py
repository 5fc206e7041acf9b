"""expand_kwargs() over .map() that turns each item into kwargs."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_expand_kwargs_map", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_expand_kwargs_map():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def add(x, y):
        return x + y

    add.expand_kwargs(numbers().map(lambda n: {"x": n, "y": n * 10}))


p_expand_kwargs_map()
