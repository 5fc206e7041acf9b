"""The reduce's sequence supports len(), indexing (also negative) and repeated iteration."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_reduce_lazy", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_reduce_lazy():
    @task
    def square(x):
        return x * x

    @task
    def inspect(values):
        return {"len": len(values), "second": values[1], "last": values[-1], "all": list(values),
                "again": [v for v in values]}

    inspect(square.expand(x=[1, 2, 3, 4]))


p_reduce_lazy()
