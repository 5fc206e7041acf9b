"""The task producing the list retries; the mapped task expands after its success."""

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(dag_id="p_upstream_retry", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_upstream_retry():
    @task(retries=1, retry_delay=timedelta(seconds=0))
    def make():
        from airflow.sdk import get_current_context

        if get_current_context()["ti"].try_number == 1:
            raise ValueError("first try fails")
        return [1, 2]

    @task
    def show(x):
        return x

    show.expand(x=make())


p_upstream_retry()
