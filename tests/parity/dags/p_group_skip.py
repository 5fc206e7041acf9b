"""A skipped index inside a mapped group skips its downstream index only."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task, task_group


@dag(dag_id="p_group_skip", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_group_skip():
    @task
    def check(x):
        from airflow.sdk.exceptions import AirflowSkipException

        if x == 1:
            raise AirflowSkipException("skip one")
        return x

    @task
    def after(x):
        return x * 2

    @task_group
    def stage(x):
        return after(check(x))

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def collect(values):
        return list(values)

    collect(stage.expand(x=[0, 1, 2]))


p_group_skip()
