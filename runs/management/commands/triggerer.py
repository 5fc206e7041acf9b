from __future__ import annotations

import logging
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from runs.triggering.triggerer import Triggerer


class Command(BaseCommand):
    help = "Run a triggerer: the triggers of deferred task instances, in one asyncio event loop."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--capacity", type=int, default=settings.TRIGGERER_CAPACITY,
                            help="most triggers this triggerer runs at once (default %(default)s)")

    def handle(self, *args: Any, capacity: int, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # Triggers' own lines go to their instances' logs; the console keeps the triggerer's.
        logging.getLogger("dagsapp").propagate = True
        triggerer = Triggerer(capacity=capacity)

        def on_signal(signum: int, frame: object) -> None:
            triggerer.request_stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.stdout.write(f"Triggerer starting (capacity {capacity})")
        triggerer.run_forever()
