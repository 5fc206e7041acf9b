"""One failed index: all_done and one_failed run, all_success is upstream_failed, all_failed is skipped."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task


@dag(dag_id="p_failed_index", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_failed_index():
    @task
    def check(x):
        if x == 2:
            raise ValueError("two is bad")
        return x

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def total_all_done(values):
        return list(values)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def alert(values):
        return "alerted"

    @task
    def total_default(values):
        return list(values)

    @task(trigger_rule=TriggerRule.ALL_FAILED)
    def all_failed(values):
        return "all failed"

    checked = check.expand(x=[1, 2, 3])
    total_all_done(checked)
    alert(checked)
    total_default(checked)
    all_failed(checked)


p_failed_index()
