"""trigger_rule='always' on a task expanding over a literal is allowed; it runs after a failure."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_always_literal", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_always_literal():
    @task
    def boom():
        raise ValueError("boom")

    @task(trigger_rule="always")
    def show(x):
        return x

    boom() >> show.expand(x=[1, 2])


p_always_literal()
