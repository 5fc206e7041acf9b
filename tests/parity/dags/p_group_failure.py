"""A failed index inside a mapped group: its downstream index is upstream_failed, others go on."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task, task_group


@dag(dag_id="p_group_failure", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_group_failure():
    @task
    def check(x):
        if x == 2:
            raise ValueError("two fails")
        return x

    @task
    def after(x):
        return x * 10

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def cleanup(x):
        return "cleaned" if x is None else f"cleaned {x}"

    @task_group
    def stage(x):
        checked = check(x)
        done = after(checked)
        done >> cleanup(x)
        return done

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def collect(values):
        return list(values)

    collect(stage.expand(x=[1, 2, 3]))


p_group_failure()
