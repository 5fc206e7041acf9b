"""map_index_template reading a value the task set in its context while running."""

from datetime import datetime

from airflow.sdk import dag, get_current_context, task


@dag(dag_id="p_mit_context_value", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_context_value():
    @task(map_index_template="{{ my_name }}")
    def named(x):
        get_current_context()["my_name"] = f"item-{x}"
        return x

    named.expand(x=[1, 2])


p_mit_context_value()
