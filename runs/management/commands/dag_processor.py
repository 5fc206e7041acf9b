from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand

from runs.scheduling.dag_processing import DagProcessor


class Command(BaseCommand):
    help = "Run the DAG processor: parse each DAG file in a child process when it changes, store DAGs and import errors."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dags-folder", default=None)

    def handle(self, *args: Any, dags_folder: str | None = None, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.stdout.write("DAG processor starting")
        DagProcessor(dags_folder=dags_folder).run_forever()
