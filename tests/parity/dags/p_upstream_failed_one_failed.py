"""A mapped one_failed task over a failed upstream: upstream_failed, the run ends."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_upstream_failed_one_failed", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_upstream_failed_one_failed():
    @task
    def boom_list():
        raise ValueError("boom before returning a list")

    @task(trigger_rule="one_failed")
    def over_failed(x):
        return x

    over_failed.expand(x=boom_list())


p_upstream_failed_one_failed()
