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
