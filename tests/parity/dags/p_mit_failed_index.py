"""map_index_template names a failed index too."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mit_failed_index", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_failed_index():
    @task(map_index_template="{{ task.op_kwargs['x'] }}")
    def check(x):
        if x == "bad":
            raise ValueError("bad input")
        return x

    check.expand(x=["good", "bad"])


p_mit_failed_index()
