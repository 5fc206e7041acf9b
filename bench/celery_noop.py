"""The raw ceiling for benchmark 1: a Celery app with one no-op task and nothing else.

Same broker and the same policy as the project's app (acks late, prefetch 1, JSON, no result
backend), its own queue and its own worker. Each task INCRs a Redis counter, so the benchmark
knows when all N have run without a result backend; that costs one Redis round trip per task.
"""
from __future__ import annotations

import os
from typing import Any

from celery import Celery

from bench.env import redis_client

QUEUE = "bench_noop"

app = Celery("bench_noop", broker=os.environ.get("CELERY_BROKER_URL"))
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    broker_transport_options={"visibility_timeout": 3600},
    broker_connection_retry_on_startup=True,
)

_redis: Any = None


@app.task(name="bench.noop")
def noop(counter_key: str) -> None:
    global _redis
    if _redis is None:
        _redis = redis_client(app.conf.broker_url)
    _redis.incr(counter_key)
