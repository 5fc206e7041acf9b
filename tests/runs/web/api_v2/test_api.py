"""Errors and methods of the whole API (runs/web/api_v2/api.py): JSON for every error, HEAD wherever GET."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.runs.web.api_v2.conftest import ApiClient

pytestmark = pytest.mark.django_db


class ErrorShapeTests:
    def test_it_answers_a_method_not_allowed_in_json_with_the_allowed_ones(self, api: Callable[[str | None], ApiClient]) -> None:
        response = api("Admin").put("/api/v2/dags")
        assert response.status_code == 405
        assert response.json() == {"detail": "Method Not Allowed"}
        assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}

    def test_it_answers_an_unknown_path_in_json(self, api: Callable[[str | None], ApiClient]) -> None:
        response = api("Viewer").get("/api/v2/no/such/thing")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}

    def test_it_answers_head_wherever_get_is_answered(self, api: Callable[[str | None], ApiClient]) -> None:
        response = api("Viewer").head("/api/v2/variables")
        assert response.status_code == 200
        assert response.content == b""

    def test_it_refuses_a_nul_in_a_json_body_with_422(self, api: Callable[[str | None], ApiClient], mapped_run: object) -> None:
        admin = api("Admin")
        for url, body in (("/api/v2/variables", {"key": "a\x00b", "value": 1}),
                          ("/api/v2/dags/api_add/clearTaskInstances", {"dag_run_id": "r\x00", "dry_run": False}),
                          ("/api/v2/dags/api_add/dagRuns", {"dag_run_id": "ok", "note": "\x00"})):
            response = admin.post(url, body, content_type="application/json")
            assert response.status_code == 422, (url, response.content)
            assert "NUL" in response.content.decode()
