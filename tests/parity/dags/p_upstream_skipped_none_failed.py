"""A mapped none_failed task over a skipped upstream: skipped, the run ends."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_upstream_skipped_none_failed", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_upstream_skipped_none_failed():
    @task
    def skip_list():
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("skipped before returning a list")

    @task(trigger_rule="none_failed")
    def over_skipped(x):
        return x

    over_skipped.expand(x=skip_list())


p_upstream_skipped_none_failed()
