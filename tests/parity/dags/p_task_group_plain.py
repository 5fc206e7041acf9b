"""A mapped task inside a plain (unmapped) task group: ids are group.task."""

from datetime import datetime

from airflow.sdk import dag, task, task_group


@dag(dag_id="p_task_group_plain", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_task_group_plain():
    @task
    def square(x):
        return x * x

    @task_group
    def section():
        return square.expand(x=[1, 2])

    @task
    def collect(values):
        return list(values)

    collect(section())


p_task_group_plain()
