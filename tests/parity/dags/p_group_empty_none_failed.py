"""A mapped group over []: the none_failed reduce after it."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task, task_group


@dag(dag_id="p_group_empty_none_failed", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_group_empty_none_failed():
    @task
    def empty():
        return []

    @task
    def inner(x):
        return x

    @task_group
    def stage(x):
        return inner(x)

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def collect(values):
        return "none" if values is None else list(values)

    collect(stage.expand(x=empty()))


p_group_empty_none_failed()
