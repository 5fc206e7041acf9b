"""A mapped classic PythonOperator over op_args."""

from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import dag


@dag(dag_id="p_python_operator", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_python_operator():
    def add(a, b):
        return a + b

    PythonOperator.partial(task_id="add", python_callable=add).expand(op_args=[[1, 2], [3, 4]])


p_python_operator()
