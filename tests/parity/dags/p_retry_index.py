"""Only the failing index retries; its try number is 3 at the end."""

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(dag_id="p_retry_index", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_retry_index():
    @task(retries=2, retry_delay=timedelta(seconds=0))
    def flaky(x):
        from airflow.sdk import get_current_context

        if x == 1 and get_current_context()["ti"].try_number < 3:
            raise ValueError("fails twice")
        return x * 10

    @task
    def collect(values):
        return list(values)

    collect(flaky.expand(x=[0, 1, 2]))


p_retry_index()
