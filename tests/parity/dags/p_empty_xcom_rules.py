"""Mapped over an upstream []: skipped; a reduce with each trigger rule."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task


@dag(dag_id="p_empty_xcom_rules", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_empty_xcom_rules():
    @task
    def empty():
        return []

    @task
    def show(x):
        return x

    shown = show.expand(x=empty())

    @task(trigger_rule=TriggerRule.ALL_SUCCESS)
    def after_all_success(values):
        return "ran" if values is None else ["ran", list(values)]

    after_all_success(shown)

    @task(trigger_rule=TriggerRule.ALL_FAILED)
    def after_all_failed(values):
        return "ran" if values is None else ["ran", list(values)]

    after_all_failed(shown)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def after_all_done(values):
        return "ran" if values is None else ["ran", list(values)]

    after_all_done(shown)

    @task(trigger_rule=TriggerRule.ONE_SUCCESS)
    def after_one_success(values):
        return "ran" if values is None else ["ran", list(values)]

    after_one_success(shown)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def after_one_failed(values):
        return "ran" if values is None else ["ran", list(values)]

    after_one_failed(shown)

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def after_none_failed(values):
        return "ran" if values is None else ["ran", list(values)]

    after_none_failed(shown)

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def after_none_failed_min_one_success(values):
        return "ran" if values is None else ["ran", list(values)]

    after_none_failed_min_one_success(shown)

    @task(trigger_rule=TriggerRule.NONE_SKIPPED)
    def after_none_skipped(values):
        return "ran" if values is None else ["ran", list(values)]

    after_none_skipped(shown)

    @task(trigger_rule=TriggerRule.ALWAYS)
    def after_always(values):
        return "ran" if values is None else ["ran", list(values)]

    after_always(shown)


p_empty_xcom_rules()
