"""trigger_rule='always' on a task expanding over an upstream result is rejected at parse time."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_always_rejected", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_always_rejected():
    @task
    def make():
        return [1, 2]

    @task(trigger_rule="always")
    def show(x):
        return x

    show.expand(x=make())


p_always_rejected()
