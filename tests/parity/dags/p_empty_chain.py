"""An empty expansion skips the next mapped task too; all_done at the end still runs."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task


@dag(dag_id="p_empty_chain", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_empty_chain():
    @task
    def empty():
        return []

    @task
    def first(x):
        return x

    @task
    def second(x):
        return x

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def last(values):
        return "none" if values is None else list(values)

    last(second.expand(x=first.expand(x=empty())))


p_empty_chain()
