"""A retried index inside a mapped group; its downstream waits and runs once."""

from datetime import datetime, timedelta

from airflow.sdk import dag, task, task_group


@dag(dag_id="p_group_retry", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_group_retry():
    @task(retries=1, retry_delay=timedelta(seconds=0))
    def flaky(x):
        from airflow.sdk import get_current_context

        if x == 1 and get_current_context()["ti"].try_number == 1:
            raise ValueError("first try fails")
        return x

    @task
    def after(x):
        return x + 100

    @task_group
    def stage(x):
        return after(flaky(x))

    @task
    def collect(values):
        return list(values)

    collect(stage.expand(x=[0, 1]))


p_group_retry()
