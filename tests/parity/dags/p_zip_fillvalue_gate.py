"""A zip(fillvalue=0)-mapped task whose other upstream fails after a retry: no index runs."""

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(dag_id="p_zip_fillvalue_gate", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_zip_fillvalue_gate():
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def gate():
        raise ValueError("closed")

    @task
    def numbers():
        return [1, 2, 3]

    @task
    def short():
        return [10]

    @task(map_index_template="{{ task.op_kwargs['pair'] }}")
    def show(pair):
        return list(pair)

    gate() >> show.expand(pair=numbers().zip(short(), fillvalue=0))


p_zip_fillvalue_gate()
