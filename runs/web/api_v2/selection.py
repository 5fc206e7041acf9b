"""Which instances an action changes: its dry run is the action itself, rolled back.

Clearing has rules of its own (a mapped task group clears the same indexes downstream, a mapped
task downstream is expanded again, nested tasks clear by path prefix) that live in
runs/services.py. Rather than predicting them a second time, a dry run performs the action in a
savepoint, notes every instance it changed (or removed), and rolls back; the real action is then
the same call, so what a dry run lists is what a clear does.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from runs.models import DagRun, TaskInstance
from runs.web.api_v2.responses import Versions, ti_json

Row = tuple[str, int, int, Any]


def _snapshot(runs: list[DagRun]) -> dict[int, Row]:
    rows = TaskInstance.objects.filter(dag_run__in=runs).values_list("pk", "state", "try_number", "max_tries", "end_date")
    return {pk: (state, tries, max_tries, end) for pk, state, tries, max_tries, end in rows}


def changed_instances(runs: list[DagRun], action: Callable[[], object], *, dry_run: bool,
                      as_after: bool = False) -> dict[str, Any]:
    """The instances ``action`` changes, as a TaskInstanceCollectionResponse: as they are before
    it (Airflow answers a clear so), or with ``as_after`` as it left them (Airflow answers a
    mark so; a dry run shows them as they are). The action is performed unless ``dry_run``."""
    with transaction.atomic():
        before = _snapshot(runs)
        savepoint = transaction.savepoint()
        action()
        after = _snapshot(runs)
        transaction.savepoint_rollback(savepoint)
        changed = [pk for pk, row in before.items() if after.get(pk) != row]
        tis = list(TaskInstance.objects.filter(pk__in=changed).order_by("dag_run_id", "task_id", "map_index"))
        if not dry_run:
            action()
            if as_after:
                tis = list(TaskInstance.objects.filter(pk__in=changed).order_by("dag_run_id", "task_id", "map_index"))
    by_id = {r.pk: r for r in runs}
    versions = Versions()
    return {"task_instances": [ti_json(ti, by_id[ti.dag_run_id], versions) for ti in tis], "total_entries": len(tis)}
