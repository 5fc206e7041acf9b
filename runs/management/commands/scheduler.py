from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand

from runs.scheduling.executors import CeleryExecutor
from runs.scheduling.loop import Scheduler


class Command(BaseCommand):
    help = "Run the scheduler: create runs, expand mapped tasks and queue instances to Celery (DAG files: manage.py dag_processor)."

    def handle(self, *args: Any, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.stdout.write("Scheduler starting")
        Scheduler(executor=CeleryExecutor()).run_forever()
