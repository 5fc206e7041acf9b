"""Version, health, import errors, the OpenAPI document and its page (runs/web/api_v2/monitor.py, api.py)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from runs import heartbeats
from runs.models import DagImportError, Heartbeat
from tests.runs.web.api_v2.conftest import ApiClient

pytestmark = pytest.mark.django_db


class MonitorTests:
    def test_it_answers_version_and_health_without_a_token(self) -> None:
        assert Client().get("/api/v2/version").json() == {"version": "3.3.2", "git_version": None}
        assert Client().get("/api/v2/monitor/health").json()["metadatabase"] == {"status": "healthy"}

    def test_it_lists_import_errors(self, api: Callable[[str | None], ApiClient]) -> None:
        DagImportError.objects.create(filename="/dags/broken.py", stacktrace="SyntaxError: invalid syntax")
        body = api("Viewer").get("/api/v2/importErrors").json()
        assert body["total_entries"] == 1
        assert (body["import_errors"][0]["filename"], body["import_errors"][0]["stack_trace"]) == (
            "/dags/broken.py", "SyntaxError: invalid syntax")


class OpenApiTests:
    def test_it_describes_airflows_paths_in_its_openapi_document(self) -> None:
        paths = Client().get("/api/v2/openapi.json").json()["paths"]
        for path in ("/api/v2/dags", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/listMapped",
                     "/api/v2/dags/{dag_id}/clearTaskInstances", "/api/v2/variables/{variable_key}"):
            assert path in paths

    def test_it_serves_a_browsable_page_without_inline_script_or_cdn(self, api: Callable[[str | None], ApiClient]) -> None:
        page = api("Viewer").get("/api/v2/docs")
        html = page.content.decode()
        assert page.status_code == 200
        assert "swagger-ui-bundle.js" in html
        assert "cdn" not in html.lower()
        assert "script-src 'self'" in page["Content-Security-Policy"]


class HealthTests:
    def test_it_reports_the_scheduler_healthy_while_it_beats_and_unhealthy_once_it_stopped(self) -> None:
        assert Client().get("/api/v2/monitor/health").json()["scheduler"] == {"status": None, "latest_scheduler_heartbeat": None}
        heartbeats.beat("scheduler", every=0)
        health = Client().get("/api/v2/monitor/health").json()
        assert health["scheduler"]["status"] == "healthy"
        assert health["dag_processor"]["status"] is None
        Heartbeat.objects.update(latest=timezone.now() - timedelta(minutes=5))
        assert Client().get("/api/v2/monitor/health").json()["scheduler"]["status"] == "unhealthy"


class TriggererInTheApiTests:
    def test_it_reports_the_triggerer_healthy_while_its_job_beats(self) -> None:
        from runs.models import Job, JobType

        assert Client().get("/api/v2/monitor/health").json()["triggerer"]["status"] is None
        now = timezone.now()
        job = Job.objects.create(job_type=JobType.TRIGGERER, hostname="h1", pid=1, start_date=now, heartbeat_at=now)
        assert Client().get("/api/v2/monitor/health").json()["triggerer"]["status"] == "healthy"
        Job.objects.filter(pk=job.pk).update(heartbeat_at=now - timedelta(minutes=5))
        assert Client().get("/api/v2/monitor/health").json()["triggerer"]["status"] == "unhealthy"

    def test_it_shows_a_deferred_instance_s_trigger_with_secrets_masked(self, api: Callable[[str | None], ApiClient],
                                                                       mapped_run: object) -> None:
        from runs.models import DagRun, Job, JobType, TaskInstance, Trigger

        run = DagRun.objects.get(run_id="r1")
        now = timezone.now()
        job = Job.objects.create(job_type=JobType.TRIGGERER, hostname="trig-1", pid=7, start_date=now, heartbeat_at=now)
        trigger = Trigger.objects.create(classpath="dagsapp.triggers.TimeDeltaTrigger", kwargs={"delta": 5, "api_token": "s3cr3t"},
                                         created_date=now, triggerer=job)
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=2).update(state="deferred", trigger=trigger)
        body = api("Viewer").get("/api/v2/dags/api_add/dagRuns/r1/taskInstances/add/2").json()
        assert body["state"] == "deferred"
        assert body["trigger"]["classpath"] == "dagsapp.triggers.TimeDeltaTrigger"
        assert "s3cr3t" not in body["trigger"]["kwargs"] and '"delta": 5' in body["trigger"]["kwargs"]
        assert body["triggerer_job"]["hostname"] == "trig-1"
        other = api("Viewer").get("/api/v2/dags/api_add/dagRuns/r1/taskInstances/add/1").json()
        assert other["trigger"] is None and other["triggerer_job"] is None
