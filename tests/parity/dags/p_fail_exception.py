"""AirflowFailException fails an index without using its retries."""

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(dag_id="p_fail_exception", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_fail_exception():
    @task(retries=3, retry_delay=timedelta(seconds=0))
    def strict(x):
        from airflow.sdk.exceptions import AirflowFailException

        if x == 1:
            raise AirflowFailException("no retries for this one")
        return x

    strict.expand(x=[0, 1])


p_fail_exception()
