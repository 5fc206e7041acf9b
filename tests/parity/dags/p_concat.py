"""concat() chains two upstream lists."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_concat", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_concat():
    @task
    def first():
        return [1, 2]

    @task
    def second():
        return ["a"]

    @task
    def show(x):
        return x

    show.expand(x=first().concat(second()))


p_concat()
