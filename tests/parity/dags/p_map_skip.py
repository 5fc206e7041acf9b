"""A .map() function raising AirflowSkipException skips that index only."""

from datetime import datetime

from airflow.sdk import TriggerRule, dag, task


@dag(dag_id="p_map_skip", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_map_skip():
    @task
    def numbers():
        return [1, 2, 3]

    def keep_odd(n):
        from airflow.sdk.exceptions import AirflowSkipException

        if n % 2 == 0:
            raise AirflowSkipException(f"{n} is even")
        return n

    @task
    def show(x):
        return x * 100

    @task
    def total_default(values):
        return sorted(values)

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def total_none_failed(values):
        return sorted(values)

    shown = show.expand(x=numbers().map(keep_odd))
    total_default(shown)
    total_none_failed(shown)


p_map_skip()
