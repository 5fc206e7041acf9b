"""The reduce sees results in map_index order, not in the order they finished."""

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(dag_id="p_reduce_order", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_reduce_order():
    @task(retries=1, retry_delay=timedelta(seconds=0))
    def slow_first(x):
        from airflow.sdk import get_current_context

        if x == 0 and get_current_context()["ti"].try_number == 1:
            raise ValueError("index 0 fails once, so it finishes last")
        return x

    @task
    def collect(values):
        return list(values)

    collect(slow_first.expand(x=[0, 1, 2, 3]))


p_reduce_order()
