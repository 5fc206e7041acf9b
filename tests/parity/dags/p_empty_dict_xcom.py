"""Mapped over an upstream {}: skipped; none_failed reduce and a plain all_success downstream."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task


@dag(dag_id="p_empty_dict_xcom", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_empty_dict_xcom():
    @task
    def empty():
        return {}

    @task
    def show(item):
        return item

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def after(values):
        return "none" if values is None else list(values)

    @task
    def plain_after():
        return "plain"

    shown = show.expand(item=empty())
    after(shown)
    shown >> plain_after()


p_empty_dict_xcom()
