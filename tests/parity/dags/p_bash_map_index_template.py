"""map_index_template on a classic operator reading the rendered operator field."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag


@dag(dag_id="p_bash_map_index_template", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_bash_map_index_template():
    BashOperator.partial(task_id="named", map_index_template="cmd {{ task.bash_command }}").expand(
        bash_command=["echo a", "echo b"])


p_bash_map_index_template()
