"""max_active_tis_per_dagrun=1 runs indexes one by one with the same results."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_max_active_tis", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_max_active_tis():
    @task(max_active_tis_per_dagrun=1)
    def one_at_a_time(x):
        return x + 1

    one_at_a_time.expand(x=[1, 2, 3])


p_max_active_tis()
