"""map_index_template reading the task's op_kwargs."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mit_op_kwargs", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_op_kwargs():
    @task(map_index_template="{{ task.op_kwargs['name'] }}")
    def greet(name):
        return f"hello {name}"

    greet.expand(name=["ann", "bob"])


p_mit_op_kwargs()
