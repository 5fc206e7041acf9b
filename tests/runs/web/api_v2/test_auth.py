"""Tokens, Bearer and session authentication, roles (runs/web/api_v2/auth.py)."""
from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest
from django.conf import settings
from django.test import Client

from runs.models import DagRun, Variable
from runs.web.api_v2.auth import ALGORITHM, AUDIENCE
from tests.conftest import make_user
from tests.runs.web.api_v2.conftest import ApiClient

JSON = "application/json"


@pytest.mark.django_db
class TokenTests:
    def test_it_trades_a_username_and_password_for_a_token_the_api_takes(self) -> None:
        make_user("alice", "Viewer")
        response = Client().post("/auth/token", {"username": "alice", "password": "pw-alice-long"}, content_type=JSON)
        assert response.status_code == 201
        token = response.json()["access_token"]
        assert ApiClient(token).get("/api/v2/dags").status_code == 200
        claims = jwt.decode(token, settings.API_JWT_SECRET, algorithms=[ALGORITHM], audience=AUDIENCE)
        assert claims["exp"] - claims["iat"] == settings.API_JWT_EXPIRATION_SEC

    def test_it_refuses_a_wrong_password_with_401_in_json(self) -> None:
        make_user("alice", "Viewer")
        response = Client().post("/auth/token", {"username": "alice", "password": "wrong"}, content_type=JSON)
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid credentials"}

    def test_it_refuses_no_token_an_expired_one_and_a_forged_one(self) -> None:
        user = make_user("alice", "Viewer")
        now = int(time.time())
        expired = jwt.encode({"sub": str(user.pk), "aud": AUDIENCE, "iat": now - 100, "exp": now - 1}, settings.API_JWT_SECRET,
                             algorithm=ALGORITHM)
        forged = jwt.encode({"sub": str(user.pk), "aud": AUDIENCE, "iat": now, "exp": now + 100}, "not-the-secret-of-this-server-at-all", algorithm=ALGORITHM)
        for client in (Client(), ApiClient(expired), ApiClient(forged), ApiClient("garbage")):
            response = client.get("/api/v2/dags")
            assert response.status_code == 401
            assert response.json() == {"detail": "Not authenticated"}

    def test_it_refuses_the_token_of_a_user_deactivated_since(self, token_for: Callable[[str | None], str]) -> None:
        token = token_for("Operator")
        from django.contrib.auth.models import User

        User.objects.update(is_active=False)
        assert ApiClient(token).get("/api/v2/dags").status_code == 401


@pytest.mark.django_db
class RoleTests:
    def test_it_lets_a_viewer_read_but_not_trigger_pause_or_clear(self, api: Callable[[str | None], ApiClient],
                                                                  mapped_run: DagRun) -> None:
        viewer = api("Viewer")
        assert viewer.get("/api/v2/dags/api_add/dagRuns/r1/taskInstances/add/listMapped").status_code == 200
        refused = [
            viewer.post("/api/v2/dags/api_add/dagRuns", {"dag_run_id": "x"}, content_type=JSON),
            viewer.patch("/api/v2/dags/api_add", {"is_paused": True}, content_type=JSON),
            viewer.post("/api/v2/dags/api_add/clearTaskInstances", {"dry_run": False, "dag_run_id": "r1"}, content_type=JSON),
            viewer.patch("/api/v2/dags/api_add/dagRuns/r1/taskInstances/add/2", {"new_state": "success"}, content_type=JSON),
            viewer.patch("/api/v2/dags/api_add/dagRuns/r1", {"state": "failed"}, content_type=JSON),
        ]
        assert [r.status_code for r in refused] == [403] * 5
        assert refused[0].json()["detail"] == "Forbidden: this needs the Operator role"
        assert DagRun.objects.count() == 1
        assert mapped_run.task_instances.get(task_id="add", map_index=2).state == "failed"

    def test_it_lets_operators_and_admins_write_variables_not_viewers(self, api: Callable[[str | None], ApiClient], db: None) -> None:
        # As Airflow's simple auth manager (its Op role manages Variables) and the dashboard's Variables page.
        body = {"key": "region", "value": "eu", "description": "where"}
        refused = api("Viewer").post("/api/v2/variables", body, content_type=JSON)
        assert refused.status_code == 403 and refused.json()["detail"] == "Forbidden: this needs the Operator role"
        assert not Variable.objects.exists()
        assert api("Operator").post("/api/v2/variables", body, content_type=JSON).status_code == 201
        assert api("Admin").patch("/api/v2/variables/region", {"key": "region", "value": "us"}, content_type=JSON).status_code == 200
        assert Variable.objects.get().val == "us"

    def test_it_takes_the_dashboards_session_and_checks_csrf_on_its_writes(self, parsed_api_dags: object) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(make_user("op", "Operator"))
        assert client.get("/api/v2/dags/api_add").json()["dag_id"] == "api_add"
        refused = client.post("/api/v2/dags/api_add/dagRuns", {"dag_run_id": "s1"}, content_type=JSON)
        assert refused.status_code == 403
        assert not DagRun.objects.exists()
        client.get("/")  # a page of the dashboard sets the CSRF cookie (its logout form)
        token = client.cookies["csrftoken"].value
        accepted = client.post("/api/v2/dags/api_add/dagRuns", {"dag_run_id": "s1"}, content_type=JSON, headers={"X-CSRFToken": token})
        assert accepted.status_code == 200
        assert DagRun.objects.get().run_id == "s1"
