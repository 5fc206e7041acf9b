"""A classic operator mapped: ``BashOperator.partial(task_id=...).expand(bash_command=[...])``.

Each command runs in its own bash; the last line it prints is the instance's XCom. Literal
commands are templates, so ``{{ map_index }}`` and ``{{ ds }}`` are rendered per instance.
"""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import BashOperator, dag, task


@dag(dag_id="example_bash_mapped", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_bash_mapped() -> None:
    outputs = BashOperator.partial(task_id="run_cmd").expand(bash_command=[
        "echo hello",
        "echo $((6*7))",
        'echo "starting"; echo "index {{ map_index }} of run day {{ ds }}"',
    ])

    @task
    def collect(lines: list[str]) -> list[str]:
        for line in lines:
            print(line)
        return list(lines)

    collect(outputs.output)


example_bash_mapped()
