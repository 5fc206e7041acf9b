"""The Celery app shared by the web process (which enqueues), the scheduler and the workers."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("dagsapp")
# Policy (acks, prefetch, serializer, broker) lives in settings.py as CELERY_* names.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fix-up closes the worker's database connection before and after every task
# unless told to reuse it: a new PostgreSQL connection per message was a fifth of a batch's
# time. Never let it close one; Django's own rule (CONN_MAX_AGE, and a connection that failed
# is dropped) decides after each task instead, as it does after each web request.
app.conf.CELERY_DB_REUSE_MAX = 2**62


@task_postrun.connect
def _close_old_connections(**_: object) -> None:
    from django.db import close_old_connections

    close_old_connections()
