"""expand_kwargs() on a task group."""

from datetime import datetime

from airflow.sdk import dag, task, task_group


@dag(dag_id="p_group_expand_kwargs", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_group_expand_kwargs():
    @task
    def mul(a, b):
        return a * b

    @task_group
    def stage(a, b):
        return mul(a, b)

    stage.expand_kwargs([{"a": 2, "b": 3}, {"a": 4, "b": 5}])


p_group_expand_kwargs()
