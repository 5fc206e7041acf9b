"""Where queued task instances go: Celery workers, or the current process for ``dags test``."""
from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.db import transaction


class Executor(Protocol):
    def queue(self, ti_ids: list[int]) -> None: ...


def batches(ti_ids: list[int], *, max_size: int, min_messages: int) -> list[list[int]]:
    """Split ids into messages: one each while few, several per message when many.

    A message costs the broker and the worker more than a short instance does, so thousands of
    instances travel in batches; at least ``min_messages`` messages keep every worker busy.
    """
    if not ti_ids:
        return []
    size = max(1, min(max_size, -(-len(ti_ids) // min_messages)))
    return [ti_ids[i : i + size] for i in range(0, len(ti_ids), size)]


# The Celery task names the workers register (runs/tasks.py). The scheduler sends by name so
# that scheduling never imports the execution code it hands work to.
RUN_TASK_INSTANCE = "runs.run_task_instance"
RUN_TASK_INSTANCES = "runs.run_task_instances"


class CeleryExecutor:
    def queue(self, ti_ids: list[int]) -> None:
        from config.celery import app

        groups = batches(ti_ids, max_size=settings.DISPATCH_BATCH_MAX, min_messages=settings.DISPATCH_MIN_MESSAGES)

        def send() -> None:
            for group in groups:
                if len(group) == 1:
                    app.send_task(RUN_TASK_INSTANCE, args=[group[0]])
                else:
                    app.send_task(RUN_TASK_INSTANCES, args=[group])

        # A worker must never receive an id whose 'queued' state is not committed yet.
        transaction.on_commit(send)


class InlineExecutor:
    """Collects ids; ``dags test`` runs them in-process with the same execution code as a worker."""

    def __init__(self) -> None:
        self.pending: list[int] = []

    def queue(self, ti_ids: list[int]) -> None:
        self.pending.extend(ti_ids)
