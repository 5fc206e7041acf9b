"""Where queued task instances go: Celery workers, or the current process for ``dags test``."""
from __future__ import annotations

from typing import Protocol

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


class CeleryExecutor:
    def queue(self, ti_ids: list[int]) -> None:
        from django.conf import settings

        from runs.tasks import run_task_instance, run_task_instances

        groups = batches(ti_ids, max_size=settings.DISPATCH_BATCH_MAX, min_messages=settings.DISPATCH_MIN_MESSAGES)

        def send() -> None:
            for group in groups:
                if len(group) == 1:
                    run_task_instance.apply_async(args=[group[0]])
                else:
                    run_task_instances.apply_async(args=[group])

        # A worker must never receive an id whose 'queued' state is not committed yet.
        transaction.on_commit(send)


class InlineExecutor:
    """Collects ids; ``dags test`` runs them in-process with the same execution code as a worker."""

    def __init__(self) -> None:
        self.pending: list[int] = []

    def queue(self, ti_ids: list[int]) -> None:
        self.pending.extend(ti_ids)
