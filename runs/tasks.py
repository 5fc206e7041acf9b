from __future__ import annotations

from celery import shared_task

from runs.execution import execute_task_instance, execute_task_instances


@shared_task(name="runs.run_task_instance", acks_late=True, ignore_result=True)
def run_task_instance(ti_id: int) -> None:
    execute_task_instance(ti_id)


@shared_task(name="runs.run_task_instances", acks_late=True, ignore_result=True)
def run_task_instances(ti_ids: list[int]) -> None:
    execute_task_instances(ti_ids)
