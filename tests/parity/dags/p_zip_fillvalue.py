"""zip(fillvalue=0) pads the shorter input with 0, in the value and in the name."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_zip_fillvalue", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_zip_fillvalue():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def short():
        return [10]

    @task(map_index_template="{{ task.op_kwargs['pair'] }}")
    def show(pair):
        return list(pair)

    show.expand(pair=numbers().zip(short(), fillvalue=0))


p_zip_fillvalue()
