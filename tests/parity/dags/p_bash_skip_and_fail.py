"""Exit code 99 skips an index, any other non-zero exit fails it."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import TriggerRule, dag, task


@dag(dag_id="p_bash_skip_and_fail", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def p_bash_skip_and_fail():
    BashOperator.partial(task_id="run").expand(bash_command=["echo ok", "exit 99", "exit 1"])

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def collect(values):
        return list(values)

    collect(BashOperator.partial(task_id="again").expand(bash_command=["echo x", "exit 99"]).output)


p_bash_skip_and_fail()
