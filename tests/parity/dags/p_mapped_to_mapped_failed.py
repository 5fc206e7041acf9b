"""Mapped-to-mapped where one index of the first task fails."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task


@dag(dag_id="p_mapped_to_mapped_failed", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mapped_to_mapped_failed():
    @task
    def first(x):
        if x == 2:
            raise ValueError("two fails")
        return x

    @task
    def second(x):
        return x * 10

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def collect(values):
        return list(values)

    collect(second.expand(x=first.expand(x=[1, 2, 3])))


p_mapped_to_mapped_failed()
