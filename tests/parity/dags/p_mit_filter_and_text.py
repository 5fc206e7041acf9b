"""map_index_template with text, a filter and ti.map_index."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mit_filter_and_text", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_filter_and_text():
    @task(map_index_template="file {{ task.op_kwargs['path'] | upper }} #{{ ti.map_index }}")
    def read(path):
        return len(path)

    read.expand(path=["a.csv", "bb.csv"])


p_mit_filter_and_text()
