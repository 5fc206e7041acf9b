"""Keeping a try before another one supersedes it (runs.models.TaskInstanceTry)."""
from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

# One statement whatever the number of instances; a try kept already stays as it was kept.
_ARCHIVE_SQL = """
INSERT INTO runs_taskinstancetry (task_instance_id, try_number, state, max_tries, queued_at, start_date, end_date, duration,
                                  hostname, pid)
SELECT id, try_number, state, max_tries, queued_at, start_date, end_date, duration, hostname, pid
FROM runs_taskinstance WHERE id = ANY(%s) AND try_number > 0
ON CONFLICT (task_instance_id, try_number) DO NOTHING
"""


def keep_current_tries(ti_ids: Iterable[int]) -> None:
    """Record these instances' current tries as they are now: call it just before a clear resets
    them, or once a try ended up for retry (the next claim overwrites its dates and host)."""
    ids = list(ti_ids)
    if ids:
        with connection.cursor() as cur:
            cur.execute(_ARCHIVE_SQL, [ids])
