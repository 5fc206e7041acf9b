"""map_index_template on a task inside a mapped task group."""

from datetime import datetime

from airflow.sdk import dag, task, task_group


@dag(dag_id="p_mit_in_group", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_in_group():
    @task(map_index_template="in-{{ task.op_kwargs['x'] }}")
    def inner(x):
        return x

    @task_group
    def stage(x):
        return inner(x)

    stage.expand(x=["p", "q"])


p_mit_in_group()
