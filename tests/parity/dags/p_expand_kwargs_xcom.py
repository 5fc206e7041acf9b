"""expand_kwargs() over an upstream list of dicts, with a partial() constant."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="p_expand_kwargs_xcom", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_expand_kwargs_xcom():
    @task
    def configs():
        return [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]

    @task
    def show(x, y, sep):
        return f"{x}{sep}{y}"

    show.partial(sep=":").expand_kwargs(configs())


p_expand_kwargs_xcom()
