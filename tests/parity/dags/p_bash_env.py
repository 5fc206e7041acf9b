"""A BashOperator mapped over env, with a templated constant command."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag


@dag(dag_id="p_bash_env", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_bash_env():
    BashOperator.partial(task_id="greet", bash_command='echo "$WHO-{{ ti.map_index }}"').expand(
        env=[{"WHO": "ann"}, {"WHO": "bob"}])


p_bash_env()
