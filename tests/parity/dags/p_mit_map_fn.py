"""map_index_template over a .map() result (needs user code to know the value)."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mit_map_fn", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_map_fn():
    @task
    def words():
        return ["x", "y"]

    @task(map_index_template="{{ task.op_kwargs['w'] }}")
    def show(w):
        return w

    show.expand(w=words().map(lambda s: s * 3))


p_mit_map_fn()
