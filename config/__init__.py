from __future__ import annotations

# Imported here so that shared tasks bind to this app whenever Django starts.
from config.celery import app as celery_app

__all__ = ("celery_app",)
