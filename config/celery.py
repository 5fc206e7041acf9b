"""The Celery app shared by the web process (which enqueues), the scheduler and the workers."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("dagsapp")
# Policy (acks, prefetch, serializer, broker) lives in settings.py as CELERY_* names.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
