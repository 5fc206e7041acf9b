"""Wake the scheduler at once when a task instance finishes (PostgreSQL LISTEN/NOTIFY).

Without it a downstream instance would wait for the scheduler's next sweep; with it the
scheduler reacts within milliseconds and the sweep is only a safety net.
"""
from __future__ import annotations

import psycopg
from django.db import connection

CHANNEL = "dagsapp_scheduler"


def notify_scheduler() -> None:
    with connection.cursor() as cur:
        cur.execute(f"NOTIFY {CHANNEL}")


class SchedulerListener:
    def __init__(self) -> None:
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        self._conn = psycopg.connect(**params, autocommit=True)
        self._conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if woken by a notification."""
        woke = False
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            woke = True
        # Drain the burst: many instances finishing together need one pass, not one each.
        for _ in self._conn.notifies(timeout=0.001):
            pass
        return woke

    def close(self) -> None:
        self._conn.close()
