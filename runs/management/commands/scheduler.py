from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand

from runs.scheduling.executors import CeleryExecutor
from runs.scheduling.loop import Scheduler


class Command(BaseCommand):
    help = "Run the scheduler: parse DAG files, create runs, expand mapped tasks and queue instances to Celery."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dags-folder", default=None)

    def handle(self, *args: Any, dags_folder: str | None = None, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.stdout.write("Scheduler starting")
        Scheduler(executor=CeleryExecutor(), dags_folder=dags_folder).run_forever()
