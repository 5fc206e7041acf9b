"""One skipped index and downstream reduces with three trigger rules."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task


@dag(dag_id="p_skipped_index", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_skipped_index():
    @task
    def check(x):
        from airflow.sdk.exceptions import AirflowSkipException

        if x == 2:
            raise AirflowSkipException("skip two")
        return x

    @task
    def total_default(values):
        return list(values)

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def total_none_failed(values):
        return list(values)

    @task(trigger_rule=TriggerRule.NONE_SKIPPED)
    def total_none_skipped(values):
        return list(values)

    checked = check.expand(x=[1, 2, 3])
    total_default(checked)
    total_none_failed(checked)
    total_none_skipped(checked)


p_skipped_index()
