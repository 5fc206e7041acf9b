"""An index that fails every try ends failed with try_number retries + 1."""

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(dag_id="p_retry_exhausted", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_retry_exhausted():
    @task(retries=1, retry_delay=timedelta(seconds=0))
    def always_bad(x):
        if x == 0:
            raise ValueError("never works")
        return x

    always_bad.expand(x=[0, 1])


p_retry_exhausted()
