"""The deployment files (Dockerfile, compose.yaml): what they run exists, and the image's web
command serves the API and the static files. (Building the image needs a Docker daemon and a
base image, which CI machines do not have; docs/deploy.md.)"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

from runs.processes import BASE_DIR
from tests.conftest import _test_database_url

COMPOSE = yaml.safe_load((BASE_DIR / "compose.yaml").read_text())
DOCKERFILE = (BASE_DIR / "Dockerfile").read_text()
DAGSAPP_SERVICES = ("migrate", "web", "scheduler", "dag-processor", "triggerer", "worker")


class ComposeTests:
    def test_it_runs_one_service_per_process_from_one_image_with_the_same_settings(self) -> None:
        services = COMPOSE["services"]
        assert set(services) == {"postgres", "redis", *DAGSAPP_SERVICES}
        assert {services[s]["image"] for s in DAGSAPP_SERVICES} == {"dagsapp:latest"}
        for name in DAGSAPP_SERVICES:
            env = services[name]["environment"]
            assert env["DATABASE_URL"].startswith("postgres://") and env["CELERY_BROKER_URL"].startswith("redis://"), name

    def test_it_names_only_commands_that_exist(self) -> None:
        commands = get_commands()
        for name in DAGSAPP_SERVICES:
            command = " ".join(COMPOSE["services"][name]["command"])
            for sub in re.findall(r"manage\.py (\w+)", command):
                assert sub in commands, (name, sub)
        assert COMPOSE["services"]["worker"]["command"][:3] == ["celery", "-A", "config"]

    def test_it_sets_only_settings_the_project_reads(self) -> None:
        settings_source = (BASE_DIR / "config" / "settings.py").read_text()
        for name in COMPOSE["x-dagsapp"]["environment"]:
            assert f'"{name}"' in settings_source, name


class ImageTests:
    def test_it_copies_every_part_of_the_project_a_process_imports(self) -> None:
        for part in ("config", "dagsapp", "runs", "templates", "static", "manage.py", "requirements.txt"):
            assert re.search(rf"^COPY {re.escape(part)}\b", DOCKERFILE, re.M), part

    @pytest.mark.django_db(transaction=True)
    def test_it_serves_the_api_and_static_files_with_the_images_web_command(self, tmp_path: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        argv = [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        # Both servers named, as in the image: no embedded PostgreSQL or Redis is started for it.
        env = {**os.environ, "DATABASE_URL": _test_database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
               "VAR_DIR": str(tmp_path)}
        server = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/version", timeout=2) as response:
                        assert response.read() == b'{"version": "3.3.2", "git_version": null}'
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/ninja/swagger-ui.css", timeout=5) as response:
                assert response.status == 200
        finally:
            server.terminate()
            server.wait(timeout=10)
