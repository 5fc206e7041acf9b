"""A mapped BashOperator over literal commands: literal strings are rendered as templates."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag


@dag(dag_id="p_bash_literal", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_bash_literal():
    BashOperator.partial(task_id="echo").expand(bash_command=["echo one", "echo two-{{ ti.map_index }}"])


p_bash_literal()
