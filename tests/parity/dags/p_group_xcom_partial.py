"""A mapped group over an upstream result with a partial() argument and an unmapped upstream inside."""

from datetime import datetime

from airflow.sdk import dag, task, task_group


@dag(dag_id="p_group_xcom_partial", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_group_xcom_partial():
    @task
    def numbers():
        return [5, 6]

    @task
    def prefix():
        return "p"

    @task
    def label(x, pre, unit):
        return f"{pre}{x}{unit}"

    @task_group
    def stage(x, unit):
        return label(x, prefix(), unit)

    stage.partial(unit="kg").expand(x=numbers())


p_group_xcom_partial()
