"""map_index_template over a dict's (key, value) pair."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_mit_dict_pair", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_mit_dict_pair():
    @task(map_index_template="{{ task.op_kwargs['item'][0] }}")
    def show(item):
        return item[1]

    show.expand(item={"k1": "v1", "k2": "v2"})


p_mit_dict_pair()
