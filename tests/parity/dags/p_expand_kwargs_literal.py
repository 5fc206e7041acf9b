"""expand_kwargs() over a literal list of dicts."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_expand_kwargs_literal", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_expand_kwargs_literal():
    @task
    def add(x, y):
        return x * y

    add.expand_kwargs([{"x": 1, "y": 2}, {"x": 3, "y": 4}, {"x": 5, "y": 6}])


p_expand_kwargs_literal()
