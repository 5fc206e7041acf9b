"""map_index_template given through override(), with a partial() argument in it."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mit_override_partial", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_override_partial():
    @task
    def work(x, tag):
        return f"{tag}{x}"

    work.override(task_id="renamed", map_index_template="{{ task.op_kwargs['tag'] }}{{ task.op_kwargs['x'] }}").partial(
        tag="#").expand(x=[7, 8])


p_mit_override_partial()
