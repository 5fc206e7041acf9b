"""A trigger of our own, beside the DAG files (a file starting with "_" is not parsed as a DAG
file, and the triggerer imports from the DAGs folder): it polls a PostgreSQL table for a row
with async psycopg, never blocking the triggerer's event loop."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from dagsapp.triggers import BaseTrigger, TriggerEvent

log = logging.getLogger(__name__)


class PostgresRowTrigger(BaseTrigger):
    def __init__(self, conn_params: dict[str, Any], table: str, key: str, poll_interval: float = 1.0) -> None:
        super().__init__()
        self.conn_params = conn_params
        self.table = table
        self.key = key
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "_pg_row_trigger.PostgresRowTrigger", {"conn_params": self.conn_params, "table": self.table, "key": self.key,
                                                      "poll_interval": self.poll_interval}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import psycopg
        from psycopg import sql

        query = sql.SQL("SELECT payload FROM {} WHERE key = %s").format(sql.Identifier(self.table))
        async with await psycopg.AsyncConnection.connect(**self.conn_params, autocommit=True) as conn:
            polls = 0
            while True:
                polls += 1
                async with conn.cursor() as cur:
                    await cur.execute(query, [self.key])
                    row = await cur.fetchone()
                if row is not None:
                    log.info("found row %r after %d polls", self.key, polls)
                    yield TriggerEvent({"key": self.key, "payload": row[0]})
                    return
                if polls == 1:
                    log.info("no row %r in %s yet; polling every %s s", self.key, self.table, self.poll_interval)
                await asyncio.sleep(self.poll_interval)
