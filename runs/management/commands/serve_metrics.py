"""``manage.py serve_metrics``: this host's processes' counters for Prometheus, on a port of their own.

For a host that runs workers or a scheduler but no web server: its processes write their
counters under PROMETHEUS_MULTIPROC_DIR, which only a process on the same host can read.
(The web server's /metrics also reports what the database holds; this reports counters only.)
"""
from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from prometheus_client import start_http_server

from runs import metrics


class Command(BaseCommand):
    help = "Serve this host's Prometheus counters (multiprocess mode) on --addr:--port until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="0.0.0.0", help="address to listen on")
        parser.add_argument("--port", type=int, default=9108, help="port to listen on")

    def handle(self, *args: Any, addr: str, port: int, **options: Any) -> None:
        start_http_server(port, addr=addr, registry=metrics.host_registry())
        self.stdout.write(f"Serving this host's metrics on http://{addr}:{port}/metrics")
        threading.Event().wait()
