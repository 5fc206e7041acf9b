from __future__ import annotations

from celery import shared_task

from runs.execution.execute import execute_task_instance, execute_task_instances
from runs.scheduling.executors import RUN_TASK_INSTANCE, RUN_TASK_INSTANCES


@shared_task(name=RUN_TASK_INSTANCE, acks_late=True, ignore_result=True)
def run_task_instance(ti_id: int) -> None:
    execute_task_instance(ti_id)


@shared_task(name=RUN_TASK_INSTANCES, acks_late=True, ignore_result=True)
def run_task_instances(ti_ids: list[int]) -> None:
    execute_task_instances(ti_ids)
