"""Commands from an upstream result are data: '{{ ... }}' in them is not rendered."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task


@dag(dag_id="p_bash_xcom_not_templated", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_bash_xcom_not_templated():
    @task
    def commands():
        return ["echo plain", "echo '{{ ti.map_index }}'"]

    BashOperator.partial(task_id="run").expand(bash_command=commands())


p_bash_xcom_not_templated()
