"""map_index_template over expand_kwargs() from an upstream result."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mit_expand_kwargs_xcom", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_expand_kwargs_xcom():
    @task
    def jobs():
        return [{"name": "first", "n": 1}, {"name": "second", "n": 2}]

    @task(map_index_template="{{ task.op_kwargs['name'] }}-{{ task.op_kwargs['n'] }}")
    def job(name, n):
        return n

    job.expand_kwargs(jobs())


p_mit_expand_kwargs_xcom()
