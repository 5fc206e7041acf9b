"""partial() constants plus expand() over a literal list, reduced by sum."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_basic_partial", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_basic_partial():
    @task
    def add(x, y):
        return x + y

    @task
    def total(values):
        return sum(values)

    total(add.partial(y=10).expand(x=[1, 2, 3]))


p_basic_partial()
