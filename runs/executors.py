"""Where queued task instances go: Celery workers, or the current process for ``dags test``."""
from __future__ import annotations

from typing import Protocol

from django.db import transaction


class Executor(Protocol):
    def queue(self, ti_ids: list[int]) -> None: ...


class CeleryExecutor:
    def queue(self, ti_ids: list[int]) -> None:
        from runs.tasks import run_task_instance

        def send() -> None:
            for ti_id in ti_ids:
                run_task_instance.apply_async(args=[ti_id])

        # A worker must never receive an id whose 'queued' state is not committed yet.
        transaction.on_commit(send)


class InlineExecutor:
    """Collects ids; ``dags test`` runs them in-process with the same execution code as a worker."""

    def __init__(self) -> None:
        self.pending: list[int] = []

    def queue(self, ti_ids: list[int]) -> None:
        self.pending.extend(ti_ids)
