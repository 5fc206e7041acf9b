"""DAGs: list with tags and search, get, pause (runs/web/api_v2/dags.py)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from runs.models import DagModel, DagRun
from runs.scheduling.loop import create_scheduled_dag_runs
from runs.scheduling.steps import active_dag_run_ids
from tests.runs.web.api_v2.conftest import ApiClient

JSON = "application/json"

pytestmark = pytest.mark.django_db


def dag_ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return [d["dag_id"] for d in response.json()["dags"]]


class DagListTests:
    def test_it_filters_by_tags_any_or_all_and_by_id_pattern(self, api: Callable[[str | None], ApiClient], parsed_api_dags: Path) -> None:
        viewer = api("Viewer")
        assert dag_ids(viewer.get("/api/v2/dags", {"tags": "api"})) == ["api_add", "api_other"]
        assert dag_ids(viewer.get("/api/v2/dags", {"tags": ["math", "api"], "tags_match_mode": "all"})) == ["api_add"]
        assert dag_ids(viewer.get("/api/v2/dags", {"dag_id_pattern": "oth"})) == ["api_other"]
        assert dag_ids(viewer.get("/api/v2/dags", {"order_by": "-dag_id", "limit": 1})) == ["api_other"]
        assert viewer.get("/api/v2/dags", {"limit": 1}).json()["total_entries"] == 2

    def test_it_reads_one_dag_with_airflows_fields(self, api: Callable[[str | None], ApiClient], parsed_api_dags: Path,
                                                   settings: Any) -> None:
        settings.DAGS_FOLDER = parsed_api_dags
        dag = api("Viewer").get("/api/v2/dags/api_other").json()
        assert {k: dag[k] for k in ("dag_id", "is_paused", "is_stale", "timetable_summary", "relative_fileloc", "has_import_errors")} == {
            "dag_id": "api_other", "is_paused": False, "is_stale": False, "timetable_summary": "@daily",
            "relative_fileloc": "api_dags.py", "has_import_errors": False}
        assert [t["name"] for t in dag["tags"]] == ["api"]


class PauseTests:
    def test_it_pauses_a_dag_and_the_scheduler_creates_no_scheduled_run_of_it(
            self, api: Callable[[str | None], ApiClient], parsed_api_dags: Path) -> None:
        DagModel.objects.filter(dag_id="api_other").update(next_dagrun=timezone.now() - timezone.timedelta(days=1))
        response = api("Operator").patch("/api/v2/dags/api_other", {"is_paused": True}, content_type=JSON)
        assert response.json()["is_paused"] is True
        assert dag_ids(api("Viewer").get("/api/v2/dags", {"paused": True})) == ["api_other"]
        create_scheduled_dag_runs()
        assert not DagRun.objects.exists()
        api("Operator").patch("/api/v2/dags/api_other", {"is_paused": False}, content_type=JSON)
        create_scheduled_dag_runs()
        assert DagRun.objects.filter(dag_id="api_other").exists()

    def test_it_holds_the_runs_of_a_paused_dag_until_it_is_unpaused(self, api: Callable[[str | None], ApiClient],
                                                                    parsed_api_dags: Path) -> None:
        operator = api("Operator")
        operator.patch("/api/v2/dags/api_add", {"is_paused": True}, content_type=JSON)
        run = operator.post("/api/v2/dags/api_add/dagRuns", {"dag_run_id": "while-paused"}, content_type=JSON).json()
        assert run["state"] == "queued"
        pk = DagRun.objects.get(run_id="while-paused").pk
        assert pk not in active_dag_run_ids()
        operator.patch("/api/v2/dags/api_add", {"is_paused": False}, content_type=JSON)
        assert pk in active_dag_run_ids()
